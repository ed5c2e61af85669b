"""Copying a live database from another installation (issue 14): docs/migration.md."""
