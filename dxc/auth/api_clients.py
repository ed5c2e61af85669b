"""``POST /<db>/clients/connect``: API-client credentials for a verified e-mail.

Only an address that already owns an API client of the database (its
creator, through ``/service/create-db``) gets one: any other user of an
app can prove their e-mail too, and must not get admin scopes by it. The
new client has the scopes of the address's existing clients. Secrets are
stored as digests, so each connect mints a new client instead of handing
back an old secret.
"""

from __future__ import annotations

from sqlalchemy import Engine

from dxc.storage import credentials


class NotAuthorized(Exception):
    """The address may not have an API client of this database."""


def connect_api_client(
    control: Engine, db_id: str, email: str, require_unverified: bool
) -> tuple[credentials.ApiClient, str]:
    """A new API client (and its secret) for ``email``, who owns one already."""
    if require_unverified:
        raise NotAuthorized(
            f"There is no pending authorization for {email} on this database "
            "(`reconnect` is not supported by this server; use `connect`)."
        )
    with control.begin() as connection:
        own = credentials.api_clients_of(connection, db_id, email)
        if not own:
            raise NotAuthorized(
                f"{email} has no API client on this database. Only its creator can connect."
            )
        scopes = tuple(sorted({scope for client in own for scope in client.scopes}))
        return credentials.create_api_client(connection, db_id, scopes, email)
