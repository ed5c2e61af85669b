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

from sqlalchemy import Connection, func, insert, select, update

from dxc.storage import schema
from dxc.storage.clock import utcnow


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiClient:
    client_id: str
    db_id: str
    scopes: tuple[str, ...]
    email: str | None


def create_api_client(
    connection: Connection, db_id: str, scopes: tuple[str, ...], email: str | None
) -> tuple[ApiClient, str]:
    """A new API client and its secret (shown once, stored only as a digest)."""
    client_id = secrets.token_hex(12)
    secret = secrets.token_urlsafe(32)
    connection.execute(
        insert(schema.api_clients).values(
            client_id=client_id,
            db_id=db_id,
            secret_hash=digest(secret),
            scopes=" ".join(scopes),
            email=email,
            created=utcnow(),
        )
    )
    return ApiClient(client_id, db_id, scopes, email), secret


def _api_client(row: Any) -> ApiClient:
    return ApiClient(row.client_id, row.db_id, tuple(row.scopes.split()), row.email)


def get_api_client(connection: Connection, client_id: str) -> ApiClient | None:
    table = schema.api_clients
    row = connection.execute(
        select(table.c.client_id, table.c.db_id, table.c.scopes, table.c.email)
        .where(table.c.client_id == client_id)
    ).one_or_none()
    return _api_client(row) if row else None


def authenticate_api_client(
    connection: Connection, client_id: str, secret: str
) -> ApiClient | None:
    """The API client if ``secret`` is its secret, else None."""
    table = schema.api_clients
    row = connection.execute(
        select(table.c.client_id, table.c.db_id, table.c.scopes, table.c.email, table.c.secret_hash)
        .where(table.c.client_id == client_id)
    ).one_or_none()
    if row is None or not hmac.compare_digest(row.secret_hash, digest(secret)):
        return None
    return _api_client(row)


def api_clients_of(connection: Connection, db_id: str, email: str) -> list[ApiClient]:
    """The API clients of database ``db_id`` that belong to ``email``."""
    table = schema.api_clients
    rows = connection.execute(
        select(table.c.client_id, table.c.db_id, table.c.scopes, table.c.email)
        .where(table.c.db_id == db_id, func.lower(table.c.email) == email.lower())
    )
    return [_api_client(row) for row in rows]


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
