"""The shard router: the one way to reach the data of a logical database.

Every shard has one engine (and so one connection pool) per process. The
control database says which shard holds which database; nothing else in the
code knows where data lives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select

from dxc.storage import schema
from dxc.storage.engines import make_engine

#: Seconds a process trusts a cached placement before asking the control database again.
PLACEMENT_TTL = 5.0


@dataclass(frozen=True)
class Shard:
    """One shard database and its connection pool."""

    id: int
    name: str
    engine: Engine

    @contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, else rolled back."""
        with self.engine.connect() as connection:
            connection.execution_options(read_only=read_only)
            with connection.begin():
                yield connection


class UnknownDatabase(LookupError):
    """No logical database has that id."""


class ShardRouter:
    """Finds the shard of a logical database, creating engines on first use."""

    def __init__(self, control: Engine) -> None:
        self.control = control
        self._shards: dict[int, Shard] = {}
        self._placement: dict[str, tuple[int, float]] = {}  # db id -> (shard id, valid until)
        self._lock = threading.Lock()

    def shard(self, shard_id: int) -> Shard:
        """The shard with id ``shard_id``."""
        shard = self._shards.get(shard_id)
        if shard is None:
            with self._lock:
                shard = self._shards.get(shard_id) or self._open(shard_id)
                self._shards[shard_id] = shard
        return shard

    def shard_for(self, db_id: str) -> Shard:
        """The shard holding database ``db_id``; :class:`UnknownDatabase` if none does."""
        placed = self._placement.get(db_id)
        if placed is None or placed[1] < time.monotonic():
            # A soft-deleted database still works until it is purged; the cache
            # expires so that other processes notice a hard delete soon.
            with self.control.connect() as connection:
                shard_id = connection.scalar(
                    select(schema.databases.c.shard_id).where(schema.databases.c.id == db_id)
                )
            if shard_id is None:
                self._placement.pop(db_id, None)
                raise UnknownDatabase(db_id)
            placed = (shard_id, time.monotonic() + PLACEMENT_TTL)
            self._placement[db_id] = placed
        return self.shard(placed[0])

    def all_shards(self) -> list[Shard]:
        with self.control.connect() as connection:
            ids = list(connection.scalars(select(schema.shards.c.id).order_by(schema.shards.c.id)))
        return [self.shard(shard_id) for shard_id in ids]

    def forget(self, db_id: str) -> None:
        """Drop the cached placement of ``db_id`` (after a move or a delete)."""
        self._placement.pop(db_id, None)

    def _open(self, shard_id: int) -> Shard:
        with self.control.connect() as connection:
            row = connection.execute(
                select(schema.shards.c.name, schema.shards.c.url).where(
                    schema.shards.c.id == shard_id
                )
            ).one_or_none()
        if row is None:
            raise LookupError(f"no shard with id {shard_id}")
        engine = self.control if row.url is None else make_engine(row.url)
        return Shard(id=shard_id, name=row.name, engine=engine)
