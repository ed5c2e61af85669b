"""Replications in the control database: databases copied here from another installation.

A replication runs as a job that holds a lease on its row: only the holder
may move the checkpoint, so two jobs of one database (after a restart, or two
workers resuming it at once) never both copy; a lease that ran out (its
process died) may be taken by anyone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, or_, select, update

from dxc.storage import schema
from dxc.storage.clock import as_utc, utcnow

COPYING = "copying"  # the first copy is under way
TAILING = "tailing"  # copied once; following the source's new writes
STOPPED = "stopped"
SWITCHED = "switched"  # the source stopped, everything is here: this copy took over
#: States in which a job copies.
RUNNING = (COPYING, TAILING)

table = schema.replications


@dataclass(frozen=True)
class Replication:
    db_id: str
    source_url: str
    client_id: str
    sealed_secret: str
    state: str
    checkpoint: int
    source_shard: int | None
    source_head: int | None
    source_counts: dict[str, int]
    copied: int
    started: datetime
    polled: datetime | None
    synced: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    error: str | None
    switched: datetime | None
    token_issuer: str | None
    token_audience: str | None
    sealed_token_key: str | None
    y_checkpoint: int
    source_blobs: int | None
    source_ydocs: int | None
    #: The source keeps no revisions: each round reads its whole export.
    full_reads: bool

    @property
    def lag(self) -> int | None:
        """Source revisions not applied here yet, as of the last answer of the source."""
        return None if self.source_head is None else max(0, self.source_head - self.checkpoint)


def _replication(row: object) -> Replication:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["source_counts"] = json.loads(values["source_counts"] or "{}")
    for name in ("started", "polled", "synced", "lease_until", "switched"):
        values[name] = as_utc(values[name]) if values[name] is not None else None
    return Replication(**values)


def create(
    connection: Connection, db_id: str, source_url: str, client_id: str, sealed_secret: str
) -> None:
    connection.execute(
        insert(table).values(
            db_id=db_id, source_url=source_url, client_id=client_id,
            sealed_secret=sealed_secret, state=COPYING, checkpoint=0, copied=0,
            started=utcnow(),
        )
    )


def get(connection: Connection, db_id: str) -> Replication | None:
    row = connection.execute(select(table).where(table.c.db_id == db_id)).first()
    return None if row is None else _replication(row)


def list_all(connection: Connection) -> list[Replication]:
    return [_replication(row) for row in connection.execute(select(table).order_by(table.c.db_id))]


def unclaimed(connection: Connection) -> list[str]:
    """Running replications that no live job holds."""
    rows = connection.execute(
        select(table.c.db_id).where(
            table.c.state.in_(RUNNING),
            or_(table.c.lease_until.is_(None), table.c.lease_until < utcnow()),
        )
    )
    return [row.db_id for row in rows]


def claim(connection: Connection, db_id: str, owner: str, seconds: float) -> bool:
    """Take or extend the lease of ``db_id``'s replication; False if another holds it
    (or it stopped)."""
    now = utcnow()
    result = connection.execute(
        update(table)
        .where(
            table.c.db_id == db_id,
            table.c.state.in_(RUNNING),
            or_(
                table.c.lease_owner == owner,
                table.c.lease_until.is_(None),
                table.c.lease_until < now,
            ),
        )
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
    )
    return result.rowcount == 1


def release(connection: Connection, db_id: str, owner: str) -> None:
    connection.execute(
        update(table)
        .where(table.c.db_id == db_id, table.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def record_round(
    connection: Connection,
    db_id: str,
    owner: str,
    *,
    checkpoint: int,
    source_shard: int,
    source_head: int,
    source_counts: dict[str, int],
    source_blobs: int | None,
    source_ydocs: int | None,
    copied: int,
    lease_seconds: float,
) -> bool:
    """Store how far the lease holder ``owner`` got (and extend its lease); False if it
    lost the lease."""
    now = utcnow()
    values: dict[str, object] = {
        "checkpoint": checkpoint, "source_shard": source_shard, "source_head": source_head,
        "source_counts": json.dumps(source_counts, sort_keys=True),
        "source_blobs": source_blobs, "source_ydocs": source_ydocs,
        "copied": table.c.copied + copied, "polled": now, "error": None,
        "lease_until": now + timedelta(seconds=lease_seconds),
    }
    if checkpoint >= source_head:
        values.update(state=TAILING, synced=now)
    return _update_held(connection, db_id, owner, values)


def record_full_read(
    connection: Connection,
    db_id: str,
    owner: str,
    *,
    copied: int,
    lease_seconds: float,
    counts: dict[str, int] | None = None,
) -> bool:
    """Store how far the lease holder ``owner`` got in a copy that reads the source's
    whole export: ``copied`` more rows written or deleted here; ``counts`` (the source's
    live objects per table) once an export was read to its end, which makes the copy
    caught up. False if it lost the lease."""
    now = utcnow()
    values: dict[str, object] = {
        "full_reads": True, "copied": table.c.copied + copied, "polled": now, "error": None,
        "lease_until": now + timedelta(seconds=lease_seconds),
    }
    if counts is not None:
        values.update(
            state=TAILING, synced=now, source_counts=json.dumps(counts, sort_keys=True)
        )
    return _update_held(connection, db_id, owner, values)


def record_y_checkpoint(
    connection: Connection, db_id: str, owner: str, checkpoint: int, lease_seconds: float
) -> bool:
    """Y.js updates up to source revision ``checkpoint`` are here (and the lease holder
    ``owner`` lives on); False if it lost the lease."""
    return _update_held(connection, db_id, owner, {
        "y_checkpoint": checkpoint, "lease_until": utcnow() + timedelta(seconds=lease_seconds),
    })


def _update_held(
    connection: Connection, db_id: str, owner: str, values: dict[str, object]
) -> bool:
    """Set ``values`` on ``db_id``'s running replication if ``owner`` holds its lease."""
    result = connection.execute(
        update(table)
        .where(
            table.c.db_id == db_id, table.c.lease_owner == owner, table.c.state.in_(RUNNING)
        )
        .values(**values)
    )
    return result.rowcount == 1


def record_error(connection: Connection, db_id: str, message: str) -> None:
    connection.execute(update(table).where(table.c.db_id == db_id).values(error=message[:2000]))


def stop(connection: Connection, db_id: str) -> bool:
    result = connection.execute(
        update(table).where(table.c.db_id == db_id).values(
            state=STOPPED, lease_owner=None, lease_until=None
        )
    )
    return result.rowcount == 1


def switch(
    connection: Connection, db_id: str, owner: str, issuer: str, audience: str, sealed_key: str
) -> bool:
    """The copy takes over (its job holds the lease): from now on it takes writes and the
    source's tokens for ``audience`` (by ``issuer``, HMAC key sealed) are valid here."""
    result = connection.execute(
        update(table)
        .where(table.c.db_id == db_id, table.c.lease_owner == owner, table.c.state == TAILING)
        .values(
            state=SWITCHED, switched=utcnow(), token_issuer=issuer, token_audience=audience,
            sealed_token_key=sealed_key, lease_owner=None, lease_until=None,
        )
    )
    return result.rowcount == 1


def waiting_to_switch(connection: Connection) -> set[str]:
    """Copies that take no client requests yet: their source has not stopped. A copy
    that reads its source's whole export takes them once it read it to the end."""
    rows = connection.execute(select(table.c.db_id).where(
        table.c.state.in_(RUNNING), ~(table.c.full_reads & (table.c.state == TAILING))
    ))
    return {row.db_id for row in rows}
