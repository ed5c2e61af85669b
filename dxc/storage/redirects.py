"""Databases that moved to another installation (control database): their clients are
forwarded there (docs/migration.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from dxc.storage import schema
from dxc.storage.clock import as_utc, utcnow

table = schema.redirects


@dataclass(frozen=True)
class Redirect:
    db_id: str
    target_url: str
    final_revision: int
    created: datetime


def record(connection: Connection, db_id: str, target_url: str, final_revision: int) -> None:
    connection.execute(insert(table).values(
        db_id=db_id, target_url=target_url, final_revision=final_revision, created=utcnow(),
    ))


def get(connection: Connection, db_id: str) -> Redirect | None:
    row = connection.execute(select(table).where(table.c.db_id == db_id)).first()
    return None if row is None else _redirect(row)


def all_targets(connection: Connection) -> dict[str, str]:
    """db_id -> target URL of every moved database."""
    return {row.db_id: row.target_url for row in connection.execute(
        select(table.c.db_id, table.c.target_url)
    )}


def _redirect(row: object) -> Redirect:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["created"] = as_utc(values["created"])
    return Redirect(**values)
