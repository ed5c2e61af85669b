"""Administrative tasks shared by the Flask CLI and the management API."""
