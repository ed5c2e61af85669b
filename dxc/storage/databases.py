"""Shards and logical databases in the control database."""

from __future__ import annotations

import secrets
import string

from sqlalchemy import Connection, insert, select

from dxc.storage import schema
from dxc.storage.clock import utcnow

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


def create_database(connection: Connection, shard_id: int) -> str:
    """Register a new logical database on ``shard_id`` and return its id."""
    db_id = new_database_id()
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
