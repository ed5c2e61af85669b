"""Shards and logical databases in the control database."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select, update

from dxc.storage import schema
from dxc.storage.clock import as_utc, utcnow

DEFAULT_SHARD = "default"
_DB_ID_ALPHABET = string.ascii_lowercase + string.digits


def ensure_default_shard(connection: Connection) -> int:
    """The id of the default shard (the control database itself), created if missing."""
    shard_id = connection.scalar(
        select(schema.shards.c.id).where(schema.shards.c.name == DEFAULT_SHARD)
    )
    if shard_id is None:
        shard_id = connection.execute(
            insert(schema.shards).values(name=DEFAULT_SHARD, url=None, weight=1, created=utcnow())
        ).inserted_primary_key[0]
    return shard_id


def new_database_id() -> str:
    """A fresh id: ``z`` and eight letters or digits, never a route name like "service"."""
    return "z" + "".join(secrets.choice(_DB_ID_ALPHABET) for _ in range(8))


def create_database(connection: Connection, shard_id: int, db_id: str | None = None) -> str:
    """Register a new logical database on ``shard_id`` (with id ``db_id``, or a new
    one) and return its id."""
    db_id = db_id or new_database_id()
    connection.execute(
        insert(schema.databases).values(id=db_id, shard_id=shard_id, created=utcnow())
    )
    return db_id


def list_databases(connection: Connection) -> list[str]:
    return list(
        connection.scalars(
            select(schema.databases.c.id)
            .where(schema.databases.c.deleted.is_(None))
            .order_by(schema.databases.c.created)
        )
    )


@dataclass(frozen=True)
class DatabaseSummary:
    """One row of ``flask dxc databases``."""

    db_id: str
    shard: str
    created: datetime
    deleted: datetime | None
    users: int
    clients: int


def exists(connection: Connection, db_id: str) -> bool:
    """Whether ``db_id`` is a database here (soft-deleted ones too)."""
    return connection.scalar(
        select(schema.databases.c.id).where(schema.databases.c.id == db_id)
    ) is not None


def summaries(connection: Connection) -> list[DatabaseSummary]:
    """Every logical database, soft-deleted ones too, with its shard and how many users
    and API clients it has, oldest first."""
    db = schema.databases
    users = select(func.count()).where(schema.users.c.db_id == db.c.id).scalar_subquery()
    clients = select(func.count()).where(schema.api_clients.c.db_id == db.c.id).scalar_subquery()
    query = (
        select(db.c.id, schema.shards.c.name, db.c.created, db.c.deleted, users, clients)
        .join(schema.shards, schema.shards.c.id == db.c.shard_id)
        .order_by(db.c.created, db.c.id)
    )
    return [DatabaseSummary(*row) for row in connection.execute(query)]


def deleted_since(connection: Connection, db_id: str) -> datetime | None:
    """When ``db_id`` was soft-deleted; None if it is not marked for deletion."""
    moment = connection.scalar(
        select(schema.databases.c.deleted).where(schema.databases.c.id == db_id)
    )
    return as_utc(moment) if moment else None


def purge_date(deleted: datetime, grace_days: int) -> datetime:
    """When a database soft-deleted at ``deleted`` is removed for good."""
    return deleted + timedelta(days=grace_days)


def mark_deleted(connection: Connection, db_id: str) -> datetime:
    """Soft-delete ``db_id``; a second mark keeps the first date (and so the purge date)."""
    connection.execute(
        update(schema.databases)
        .where(schema.databases.c.id == db_id, schema.databases.c.deleted.is_(None))
        .values(deleted=utcnow())
    )
    moment = deleted_since(connection, db_id)
    assert moment is not None
    return moment


def unmark_deleted(connection: Connection, db_id: str) -> bool:
    """Cancel the soft deletion of ``db_id``; False if it was not marked."""
    result = connection.execute(
        update(schema.databases)
        .where(schema.databases.c.id == db_id, schema.databases.c.deleted.is_not(None))
        .values(deleted=None)
    )
    return result.rowcount > 0


def deleted_before(connection: Connection, moment: datetime) -> list[str]:
    """Databases soft-deleted before ``moment`` (their grace period is over)."""
    return list(
        connection.scalars(
            select(schema.databases.c.id).where(schema.databases.c.deleted < moment)
        )
    )


def remove_database(connection: Connection, db_id: str) -> None:
    """Delete every control row of ``db_id``, the database row last."""
    for table in (
        schema.api_clients,
        schema.users,
        schema.refresh_tokens,
        schema.table_schemas,
        schema.origins,
        schema.templates,
        schema.oauth_providers,
        schema.login_settings,
        schema.oauth_states,
        schema.oauth_codes,
        schema.shard_moves,
        schema.redirects,
        schema.replications,
    ):
        connection.execute(delete(table).where(table.c.db_id == db_id))
    connection.execute(delete(schema.otps).where(schema.otps.c.audience == db_id))
    connection.execute(delete(schema.databases).where(schema.databases.c.id == db_id))
