"""What each worker process counted per database (control database): requests per
minute and its open sockets now. Written by :mod:`dxc.activity`, read by ``flask dxc stats``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from dxc.storage import schema

activity = schema.activity
open_sockets = schema.open_sockets


@dataclass(frozen=True)
class Minute:
    minute: int  # whole minutes since the epoch
    syncs: int
    forwarded: int


@dataclass(frozen=True)
class Sockets:
    sockets: int
    relayed: int
    workers: int  # live workers holding any


def add_counts(
    connection: Connection, worker_id: str, counts: Mapping[tuple[str, int], tuple[int, int]]
) -> None:
    """Add ``(db_id, minute) -> (syncs, forwarded)`` to this worker's rows."""
    if not counts:
        return
    upsert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = upsert(activity)
    statement = statement.on_conflict_do_update(
        index_elements=list(activity.primary_key.columns),
        set_={
            "syncs": activity.c.syncs + statement.excluded.syncs,
            "forwarded": activity.c.forwarded + statement.excluded.forwarded,
        },
    )
    connection.execute(statement, [
        {"worker_id": worker_id, "db_id": db_id, "minute": minute,
         "syncs": syncs, "forwarded": forwarded}
        for (db_id, minute), (syncs, forwarded) in counts.items()
    ])


def replace_sockets(
    connection: Connection, worker_id: str, gauges: Mapping[str, tuple[int, int]], now: int
) -> None:
    """This worker's open sockets per database, ``db_id -> (served, relayed)``, as of ``now``."""
    connection.execute(delete(open_sockets).where(open_sockets.c.worker_id == worker_id))
    if gauges:
        connection.execute(insert(open_sockets), [
            {"worker_id": worker_id, "db_id": db_id, "sockets": served, "relayed": relayed,
             "heartbeat": now}
            for db_id, (served, relayed) in gauges.items()
        ])


def prune(connection: Connection, counts_before: int, sockets_before: int) -> None:
    """Forget minutes before ``counts_before`` and socket rows not renewed since
    ``sockets_before`` (their worker died)."""
    connection.execute(delete(activity).where(activity.c.minute < counts_before))
    connection.execute(delete(open_sockets).where(open_sockets.c.heartbeat < sockets_before))


def minutes(connection: Connection, db_id: str, since: int) -> list[Minute]:
    """Every worker's counts of ``db_id`` summed per minute, from minute ``since`` on."""
    rows = connection.execute(
        select(activity.c.minute, func.sum(activity.c.syncs), func.sum(activity.c.forwarded))
        .where(activity.c.db_id == db_id, activity.c.minute >= since)
        .group_by(activity.c.minute)
        .order_by(activity.c.minute)
    )
    return [Minute(int(m), int(s), int(f)) for m, s, f in rows]


def sockets(connection: Connection, db_id: str, alive_since: int) -> Sockets:
    """The sockets of ``db_id`` open in every worker heard from since ``alive_since``."""
    served, relayed, workers = connection.execute(
        select(
            func.coalesce(func.sum(open_sockets.c.sockets), 0),
            func.coalesce(func.sum(open_sockets.c.relayed), 0),
            func.count(),
        ).where(open_sockets.c.db_id == db_id, open_sockets.c.heartbeat >= alive_since)
    ).one()
    return Sockets(int(served), int(relayed), int(workers))
