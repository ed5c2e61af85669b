"""The browser origins each database allows (``npx dexie-cloud whitelist``), control database."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from dxc.storage import schema
from dxc.storage.clock import utcnow


def list_origins(connection: Connection, db_id: str) -> list[str]:
    table = schema.origins
    return list(connection.scalars(
        select(table.c.origin).where(table.c.db_id == db_id).order_by(table.c.origin)
    ))


def add_origin(connection: Connection, db_id: str, origin: str) -> int:
    """Whitelist ``origin``; 1 if it is new, 0 if it was there already."""
    table = schema.origins
    known = connection.scalar(
        select(table.c.origin).where(table.c.db_id == db_id, table.c.origin == origin)
    )
    if known is not None:
        return 0
    connection.execute(insert(table).values(db_id=db_id, origin=origin, created=utcnow()))
    return 1


def delete_origin(connection: Connection, db_id: str, origin: str) -> int:
    """Remove ``origin`` from the whitelist; how many rows went (0 or 1)."""
    table = schema.origins
    return connection.execute(
        delete(table).where(table.c.db_id == db_id, table.c.origin == origin)
    ).rowcount
