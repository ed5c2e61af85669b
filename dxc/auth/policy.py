"""Who may do what beyond a database's own users (see docs/auth.md)."""

from __future__ import annotations


def may_create_databases(allowed: tuple[str, ...] | None, email: str) -> bool:
    """May ``email`` (proven by OTP) create databases through ``/service/create-db``?

    ``allowed`` is ``DXC_CREATE_DB_EMAILS``: addresses and ``@domain`` entries;
    None (development without the setting) lets every verified address in.
    """
    if allowed is None:
        return True
    email = email.lower()
    return email in allowed or "@" + email.rsplit("@", 1)[-1] in allowed
