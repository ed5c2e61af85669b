"""``POST /<db>/clients/connect``: API-client credentials for a proven e-mail.

``clients/add`` (``npx dexie-cloud authorize <email>``) leaves a *pending*
client for the address; its owner claims it by proving the address (OTP)
with ``connect`` or ``reconnect``, which marks it verified and mints its
secret then, since secrets are stored as digests only. Without a pending
client, ``connect`` mints a new client for an address that already has a
verified personal client (the creator's second machine), with the scopes of
its clients. Any other user of an app can prove their e-mail too, and must
not get admin scopes by it.
"""

from __future__ import annotations

from sqlalchemy import Engine

from dxc.storage import credentials
from dxc.storage.clock import utcnow


class NotAuthorized(Exception):
    """The address may not have an API client of this database."""


def connect_api_client(
    control: Engine, db_id: str, email: str, require_unverified: bool
) -> tuple[credentials.ApiClient, str]:
    """The claimed pending client of ``email`` (or a new one, see above) and its secret."""
    with control.begin() as connection:
        own = credentials.api_clients_of(connection, db_id, email)
        for pending in (client for client in own if not client.verified):
            claimed = credentials.claim_api_client(connection, pending.client_id)
            if claimed:
                return claimed
        if require_unverified:
            raise NotAuthorized(
                f"There is no pending API client for {email} on this database. "
                f"A database manager must first run `npx dexie-cloud authorize {email}`."
            )
        now = utcnow()
        personal = [
            client for client in own
            if client.verified and not client.service_account and not client.expired(now)
        ]
        if not personal:
            raise NotAuthorized(
                f"{email} has no API client on this database: a database manager "
                f"must first run `npx dexie-cloud authorize {email}`."
            )
        scopes = tuple(sorted({scope for client in personal for scope in client.scopes}))
        return credentials.create_api_client(connection, db_id, scopes, email)
