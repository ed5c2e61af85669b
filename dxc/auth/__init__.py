"""Authentication: access tokens, refresh tokens and the ``/token`` grants."""
