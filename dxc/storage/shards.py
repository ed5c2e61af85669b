"""Shards in the control database: their rows, where new databases go, and moves in progress."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update

from dxc.storage import schema
from dxc.storage.clock import utcnow
from dxc.storage.databases import ensure_default_shard

shards = schema.shards
moves = schema.shard_moves

#: States of a move (``shard_moves.state``).
COPYING = "copying"
SWITCHED = "switched"


@dataclass(frozen=True)
class ShardRow:
    id: int
    name: str
    url: str | None  #: None: the control database itself; else masked (or, unsealed, clear)
    weight: int
    read_only: bool
    sealed_url: str | None  #: the whole URL, sealed (dxc.storage.shard_urls)
    version: int  #: raised by every change of the row


@dataclass(frozen=True)
class Move:
    db_id: str
    from_shard: int
    to_shard: int
    state: str


def list_shards(connection: Connection) -> list[ShardRow]:
    rows = connection.execute(
        select(
            shards.c.id, shards.c.name, shards.c.url, shards.c.weight, shards.c.read_only,
            shards.c.sealed_url, shards.c.version,
        ).order_by(shards.c.id)
    )
    return [ShardRow(*row) for row in rows]


def find_shard(connection: Connection, name: str) -> ShardRow | None:
    return next((row for row in list_shards(connection) if row.name == name), None)


def add_shard(connection: Connection, name: str, url_columns: dict[str, str], weight: int) -> int:
    """A new shard; ``url_columns``: its ``url`` and ``sealed_url`` (``UrlSeal.columns``)."""
    return connection.execute(
        insert(shards).values(
            name=name, weight=weight, read_only=False, created=utcnow(), version=1,
            **url_columns,
        )
    ).inserted_primary_key[0]


def update_shard(connection: Connection, shard_id: int, **values: object) -> None:
    """Change a shard's row and raise its version, which running workers watch."""
    connection.execute(
        update(shards).where(shards.c.id == shard_id).values(version=shards.c.version + 1, **values)
    )


def versions(connection: Connection) -> dict[int, int]:
    """Shard id -> version: what a worker compares with the shards it has open."""
    rows = connection.execute(select(shards.c.id, shards.c.version))
    return {shard_id: version for shard_id, version in rows}


def remove_shard(connection: Connection, shard_id: int) -> None:
    connection.execute(delete(shards).where(shards.c.id == shard_id))


def databases_on(connection: Connection) -> dict[int, list[str]]:
    """Shard id -> the databases placed on it (soft-deleted ones too), oldest first."""
    db = schema.databases
    placed: dict[int, list[str]] = {}
    for shard_id, db_id in connection.execute(
        select(db.c.shard_id, db.c.id).order_by(db.c.created, db.c.id)
    ):
        placed.setdefault(shard_id, []).append(db_id)
    return placed


def pick_shard(connection: Connection, chooser: random.Random | None = None) -> int:
    """Where a new database goes: a writable shard with a positive weight, drawn
    with probability proportional to its weight; the default shard when none is."""
    candidates = [row for row in list_shards(connection) if not row.read_only and row.weight > 0]
    if not candidates:
        return ensure_default_shard(connection)
    chosen = (chooser or random.SystemRandom()).choices(
        candidates, weights=[row.weight for row in candidates]
    )
    return chosen[0].id


def placement(connection: Connection, db_id: str) -> tuple[int, int | None] | None:
    """(shard id, revision key) of ``db_id``; None if there is no such database."""
    db = schema.databases
    row = connection.execute(
        select(db.c.shard_id, db.c.revision_key).where(db.c.id == db_id)
    ).one_or_none()
    return None if row is None else (row.shard_id, row.revision_key)


def switch(connection: Connection, db_id: str, to_shard: int) -> None:
    """Place ``db_id`` on ``to_shard`` and mark its move switched, in one transaction.
    The revision key is set on the first move and kept ever after."""
    db = schema.databases
    connection.execute(
        update(db)
        .where(db.c.id == db_id)
        .values(shard_id=to_shard, revision_key=func.coalesce(db.c.revision_key, db.c.shard_id))
    )
    set_move_state(connection, db_id, SWITCHED)


def current_move(connection: Connection, db_id: str) -> Move | None:
    row = connection.execute(
        select(moves.c.db_id, moves.c.from_shard, moves.c.to_shard, moves.c.state).where(
            moves.c.db_id == db_id
        )
    ).one_or_none()
    return None if row is None else Move(*row)


def unfinished_moves(connection: Connection) -> list[Move]:
    rows = connection.execute(
        select(moves.c.db_id, moves.c.from_shard, moves.c.to_shard, moves.c.state).order_by(
            moves.c.started
        )
    )
    return [Move(*row) for row in rows]


def start_move(connection: Connection, db_id: str, from_shard: int, to_shard: int) -> None:
    now = utcnow()
    connection.execute(
        insert(moves).values(
            db_id=db_id, from_shard=from_shard, to_shard=to_shard, state=COPYING,
            started=now, updated=now,
        )
    )


def set_move_state(connection: Connection, db_id: str, state: str) -> None:
    connection.execute(
        update(moves).where(moves.c.db_id == db_id).values(state=state, updated=utcnow())
    )


def finish_move(connection: Connection, db_id: str) -> None:
    connection.execute(delete(moves).where(moves.c.db_id == db_id))


def moved_since(connection: Connection, db_id: str) -> datetime | None:
    return connection.scalar(select(moves.c.updated).where(moves.c.db_id == db_id))
