"""API clients and refresh tokens (control database).

Secrets are stored as SHA-256 digests only: they are long random strings,
so a digest is as good as a slow hash and lets us look them up directly.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

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


@dataclass(frozen=True)
class RefreshToken:
    db_id: str
    user_id: str
    public_key: str
    expires: datetime
    revoked: datetime | None


def store_refresh_token(
    connection: Connection,
    token: str,
    db_id: str,
    user_id: str,
    public_key: str,
    expires: datetime,
) -> None:
    connection.execute(
        insert(schema.refresh_tokens).values(
            token_hash=digest(token),
            db_id=db_id,
            user_id=user_id,
            public_key=public_key,
            created=utcnow(),
            expires=expires,
        )
    )


def find_refresh_token(connection: Connection, token: str) -> RefreshToken | None:
    table = schema.refresh_tokens
    row = connection.execute(
        select(table.c.db_id, table.c.user_id, table.c.public_key, table.c.expires, table.c.revoked)
        .where(table.c.token_hash == digest(token))
    ).one_or_none()
    return RefreshToken(**row._mapping) if row else None


def revoke_refresh_tokens(connection: Connection, db_id: str, user_id: str) -> None:
    table = schema.refresh_tokens
    connection.execute(
        update(table)
        .where(table.c.db_id == db_id, table.c.user_id == user_id, table.c.revoked.is_(None))
        .values(revoked=utcnow())
    )
