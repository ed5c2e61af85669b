"""API clients and refresh tokens (control database).

Secrets are stored as SHA-256 digests only: they are long random strings,
so a digest is as good as a slow hash and lets us look them up directly.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from dxc.storage import schema
from dxc.storage.clock import as_utc, utcnow


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiClient:
    client_id: str
    db_id: str
    scopes: tuple[str, ...]
    email: str | None
    #: False while authorized by ``clients/add`` but not claimed by its owner yet.
    verified: bool = True
    service_account: bool = False
    #: When a rotated client stops working; None: never.
    expires: datetime | None = None
    created: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and as_utc(self.expires) <= now


_COLUMNS = (
    schema.api_clients.c.client_id,
    schema.api_clients.c.db_id,
    schema.api_clients.c.scopes,
    schema.api_clients.c.email,
    schema.api_clients.c.verified,
    schema.api_clients.c.service_account,
    schema.api_clients.c.expires,
    schema.api_clients.c.created,
)


def create_api_client(
    connection: Connection,
    db_id: str,
    scopes: tuple[str, ...],
    email: str | None,
    *,
    service_account: bool = False,
) -> tuple[ApiClient, str]:
    """A new verified API client and its secret (shown once, stored only as a digest)."""
    secret = secrets.token_urlsafe(32)
    return _insert(connection, db_id, scopes, email, digest(secret), True, service_account), secret


def authorize_api_client(
    connection: Connection, db_id: str, scopes: tuple[str, ...], email: str
) -> ApiClient:
    """A pending (unverified) client: its secret is minted when its owner claims it."""
    unknown = digest(secrets.token_urlsafe(32))  # until the claim, a secret nobody knows
    return _insert(connection, db_id, scopes, email, unknown, False, False)


def _insert(
    connection: Connection,
    db_id: str,
    scopes: tuple[str, ...],
    email: str | None,
    secret_hash: str,
    verified: bool,
    service_account: bool,
) -> ApiClient:
    client = ApiClient(
        secrets.token_hex(12), db_id, scopes, email, verified, service_account, None, utcnow()
    )
    connection.execute(
        insert(schema.api_clients).values(
            client_id=client.client_id,
            db_id=db_id,
            secret_hash=secret_hash,
            scopes=" ".join(scopes),
            email=email,
            created=client.created,
            verified=verified,
            service_account=service_account,
        )
    )
    return client


def claim_api_client(connection: Connection, client_id: str) -> tuple[ApiClient, str] | None:
    """Mark a pending client verified and mint its secret; None if it was claimed meanwhile."""
    table = schema.api_clients
    secret = secrets.token_urlsafe(32)
    claimed = connection.execute(
        update(table)
        .where(table.c.client_id == client_id, table.c.verified.is_(False))
        .values(verified=True, secret_hash=digest(secret))
    ).rowcount
    client = get_api_client(connection, client_id) if claimed else None
    return (client, secret) if client else None


def _api_client(row: Any) -> ApiClient:
    return ApiClient(
        row.client_id, row.db_id, tuple(row.scopes.split()), row.email, bool(row.verified),
        bool(row.service_account), row.expires and as_utc(row.expires),
        row.created and as_utc(row.created),
    )


def get_api_client(connection: Connection, client_id: str) -> ApiClient | None:
    table = schema.api_clients
    row = connection.execute(
        select(*_COLUMNS).where(table.c.client_id == client_id)
    ).one_or_none()
    return _api_client(row) if row else None


def authenticate_api_client(
    connection: Connection, client_id: str, secret: str
) -> ApiClient | None:
    """The verified API client if ``secret`` is its secret, else None (expired or not)."""
    table = schema.api_clients
    row = connection.execute(
        select(*_COLUMNS, table.c.secret_hash)
        .where(table.c.client_id == client_id, table.c.verified.is_(True))
    ).one_or_none()
    if row is None or not hmac.compare_digest(row.secret_hash, digest(secret)):
        return None
    return _api_client(row)


def api_clients_of(connection: Connection, db_id: str, email: str) -> list[ApiClient]:
    """The API clients of database ``db_id`` that belong to ``email``."""
    table = schema.api_clients
    rows = connection.execute(
        select(*_COLUMNS)
        .where(table.c.db_id == db_id, func.lower(table.c.email) == email.lower())
        .order_by(table.c.created, table.c.client_id)
    )
    return [_api_client(row) for row in rows]


def list_api_clients(
    connection: Connection, db_id: str, *, for_update: bool = False
) -> list[ApiClient]:
    """Every API client of ``db_id``, oldest first; ``for_update`` locks them (PostgreSQL)."""
    table = schema.api_clients
    query = select(*_COLUMNS).where(table.c.db_id == db_id)
    if for_update:
        query = query.with_for_update()
    rows = connection.execute(query.order_by(table.c.created, table.c.client_id))
    return [_api_client(row) for row in rows]


def delete_api_clients(connection: Connection, client_ids: list[str]) -> int:
    """Remove these clients and the sessions they minted by impersonation; how many clients."""
    if not client_ids:
        return 0
    connection.execute(
        update(schema.refresh_tokens)
        .where(
            schema.refresh_tokens.c.client_id.in_(client_ids),
            schema.refresh_tokens.c.revoked.is_(None),
        )
        .values(revoked=utcnow())
    )
    table = schema.api_clients
    return connection.execute(delete(table).where(table.c.client_id.in_(client_ids))).rowcount


def expire_api_client(connection: Connection, client_id: str, expires: datetime) -> None:
    table = schema.api_clients
    connection.execute(
        update(table).where(table.c.client_id == client_id).values(expires=expires)
    )


@dataclass(frozen=True)
class RefreshToken:
    db_id: str
    user_id: str
    public_key: str
    expires: datetime
    revoked: datetime | None
    client_id: str | None
    scopes: tuple[str, ...] | None


def store_refresh_token(
    connection: Connection,
    token: str,
    db_id: str,
    user_id: str,
    public_key: str,
    expires: datetime,
    scopes: tuple[str, ...] | None = None,
    client_id: str | None = None,
) -> None:
    connection.execute(
        insert(schema.refresh_tokens).values(
            token_hash=digest(token),
            db_id=db_id,
            user_id=user_id,
            public_key=public_key,
            created=utcnow(),
            expires=expires,
            scopes=" ".join(scopes) if scopes is not None else None,
            client_id=client_id,
        )
    )


def find_refresh_token(connection: Connection, token: str) -> RefreshToken | None:
    table = schema.refresh_tokens
    row = connection.execute(
        select(
            table.c.db_id, table.c.user_id, table.c.public_key, table.c.expires, table.c.revoked,
            table.c.client_id, table.c.scopes,
        ).where(table.c.token_hash == digest(token))
    ).one_or_none()
    if row is None:
        return None
    values = dict(row._mapping)
    values["scopes"] = tuple(values["scopes"].split()) if values["scopes"] is not None else None
    return RefreshToken(**values)


def revoke_refresh_tokens(connection: Connection, user_id: str, db_id: str | None = None) -> int:
    """Revoke the sessions of ``user_id`` in ``db_id`` (every database if None); how many."""
    table = schema.refresh_tokens
    query = update(table).where(table.c.user_id == user_id, table.c.revoked.is_(None))
    if db_id is not None:
        query = query.where(table.c.db_id == db_id)
    return connection.execute(query.values(revoked=utcnow())).rowcount
