"""Databases deleted with ``flask dxc delete-db`` (control database): their URL is
forwarded to where they moved until ``forward_until``, then answers 410 Gone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from dxc.storage import schema
from dxc.storage.clock import as_utc

table = schema.retired_databases


@dataclass(frozen=True)
class Retired:
    db_id: str
    retired: datetime
    target_url: str | None
    forward_until: datetime | None

    def forwarding(self, now: datetime) -> bool:
        return self.target_url is not None and self.forward_until is not None and (
            now < self.forward_until
        )


def record(connection: Connection, entry: Retired) -> None:
    connection.execute(insert(table).values(
        db_id=entry.db_id, retired=entry.retired, target_url=entry.target_url,
        forward_until=entry.forward_until,
    ))


def get(connection: Connection, db_id: str) -> Retired | None:
    row = connection.execute(select(table).where(table.c.db_id == db_id)).first()
    return None if row is None else _retired(row)


def all_retired(connection: Connection) -> dict[str, Retired]:
    return {row.db_id: _retired(row) for row in connection.execute(select(table))}


def _retired(row: object) -> Retired:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["retired"] = as_utc(values["retired"])
    if values["forward_until"] is not None:
        values["forward_until"] = as_utc(values["forward_until"])
    return Retired(**values)
