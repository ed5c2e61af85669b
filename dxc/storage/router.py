"""The shard router: the one way to reach the data of a logical database.

Every shard has one engine (and so one connection pool) per process. The
control database says which shard holds which database; nothing else in the
code knows where data lives. A placement is cached for :data:`PLACEMENT_TTL`
seconds; a database moved meanwhile (``flask dxc move-realms``) is noticed
sooner where it matters: its old shard no longer has its revision counter,
so a writer or a pull there meets :class:`NotOnShard`, and the placement is
read again (:meth:`ShardRouter.retrying`).

A shard's row changes too (``flask dxc update-shard --url``: a new password
or host for the same data). Every :data:`SHARD_CHECK_SECONDS` a process
compares the versions of the shards it has open with the control database
(one small query, on the first use of a shard after that time), disposes of
the engine of a shard whose version moved and opens the new one: running
workers follow a changed URL without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TypeVar

from sqlalchemy import Connection, Engine, select

from dxc.storage import schema
from dxc.storage import shards as shard_store
from dxc.storage.access_index import StandingCache
from dxc.storage.engines import make_engine, single_statements
from dxc.storage.shard_urls import UrlSeal

#: Seconds a process trusts a cached placement before asking the control database again.
PLACEMENT_TTL = 5.0
#: Seconds between two looks at the placement of a database that is being moved.
MOVED_RETRY_SECONDS = 0.05
#: Seconds between two comparisons of the open shards' versions with the control database.
SHARD_CHECK_SECONDS = 5.0

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """One shard database and its connection pool, as a logical database sees it.

    ``location`` is the ``shards`` row that holds the data. ``id`` keys the
    database's revisions in revision tokens and bus changes: the shard its
    revision counter began on, which a move does not change (the counter moves
    with the data), so that clients' tokens stay valid. For a database that
    never moved, and for :meth:`ShardRouter.shard`, both are the same.
    """

    id: int
    name: str
    engine: Engine
    location: int
    version: int = 0  #: of the ``shards`` row the engine was opened from
    #: Who users stand for in its databases, by access stamp (kept with the engine).
    standing: StandingCache = field(default_factory=StandingCache, compare=False, repr=False)

    @contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, else rolled back."""
        with self.engine.connect() as connection:
            connection.execution_options(read_only=read_only)
            with connection.begin():
                yield connection

    @contextmanager
    def reads(self) -> Iterator[Connection]:
        """A connection for reads that need no transaction of their own
        (:func:`~dxc.storage.engines.single_statements`)."""
        with single_statements(self.engine) as connection:
            yield connection


class UnknownDatabase(LookupError):
    """No logical database has that id."""


class NotOnShard(LookupError):
    """The shard asked does not hold the database (any longer): it moved away,
    or it is being moved and its writes are held. Read the placement again."""

    def __init__(self, db_id: str) -> None:
        super().__init__(db_id)
        self.db_id = db_id


class ShardRouter:
    """Finds the shard of a logical database, creating engines on first use."""

    def __init__(self, control: Engine, seal: UrlSeal) -> None:
        self.control = control
        self.seal = seal
        self._shards: dict[int, Shard] = {}
        #: db id -> (shard id, revision key, valid until)
        self._placement: dict[str, tuple[int, int | None, float]] = {}
        self._lock = threading.Lock()
        self._next_check = time.monotonic() + SHARD_CHECK_SECONDS

    def shard(self, shard_id: int) -> Shard:
        """The shard with id ``shard_id``."""
        if time.monotonic() >= self._next_check:
            self._reopen_changed()
        shard = self._shards.get(shard_id)
        if shard is None:
            with self._lock:
                shard = self._shards.get(shard_id) or self._open(shard_id)
                self._shards[shard_id] = shard
        return shard

    def shard_for(self, db_id: str) -> Shard:
        """The shard holding database ``db_id``; :class:`UnknownDatabase` if none does."""
        placed = self._placement.get(db_id)
        if placed is None or placed[2] < time.monotonic():
            # A soft-deleted database still works until it is purged; the cache
            # expires so that other processes notice a hard delete or a move soon.
            databases = schema.databases
            with self.control.connect() as connection:
                row = connection.execute(
                    select(databases.c.shard_id, databases.c.revision_key).where(
                        databases.c.id == db_id
                    )
                ).one_or_none()
            if row is None:
                self._placement.pop(db_id, None)
                raise UnknownDatabase(db_id)
            placed = (row.shard_id, row.revision_key, time.monotonic() + PLACEMENT_TTL)
            self._placement[db_id] = placed
        shard = self.shard(placed[0])
        return shard if placed[1] in (None, shard.id) else replace(shard, id=placed[1])

    def retrying(self, db_id: str, work: Callable[[Shard], T], patience: float) -> T:
        """``work(shard_for(db_id))``; when the database turns out not to be on that
        shard (moved, or its writes held by a move), again on the shard the control
        database names, for up to ``patience`` seconds, then :class:`NotOnShard`.

        ``work`` must leave nothing behind when it raises :class:`NotOnShard`
        (its shard transaction rolled back)."""
        deadline = time.monotonic() + patience
        while True:
            try:
                return work(self.shard_for(db_id))
            except NotOnShard:
                self.forget(db_id)
                if time.monotonic() >= deadline:
                    raise
                time.sleep(MOVED_RETRY_SECONDS)

    def all_shards(self) -> list[Shard]:
        with self.control.connect() as connection:
            ids = list(connection.scalars(select(schema.shards.c.id).order_by(schema.shards.c.id)))
        return [self.shard(shard_id) for shard_id in ids]

    def forget(self, db_id: str) -> None:
        """Drop the cached placement of ``db_id`` (after a move or a delete)."""
        self._placement.pop(db_id, None)

    def _reopen_changed(self) -> None:
        """Close the open shards whose row changed (or went); the next use opens them anew."""
        self._next_check = time.monotonic() + SHARD_CHECK_SECONDS  # before waiting for the answer
        with self.control.connect() as connection:
            versions = shard_store.versions(connection)
        for shard in list(self._shards.values()):
            if versions.get(shard.location) != shard.version:
                self.close(shard.location)

    def _open(self, shard_id: int) -> Shard:
        shards = schema.shards
        with self.control.connect() as connection:
            row = connection.execute(
                select(shards.c.name, shards.c.url, shards.c.sealed_url, shards.c.version).where(
                    shards.c.id == shard_id
                )
            ).one_or_none()
        if row is None:
            raise LookupError(f"no shard with id {shard_id}")
        engine = (
            self.control if row.url is None
            else make_engine(self.seal.open(row.url, row.sealed_url))
        )
        return Shard(
            id=shard_id, name=row.name, engine=engine, location=shard_id, version=row.version
        )

    def close(self, shard_id: int) -> None:
        """Dispose of the pool of ``shard_id`` (its URL changed, or it was removed)."""
        with self._lock:
            shard = self._shards.pop(shard_id, None)
        if shard is not None and shard.engine is not self.control:
            shard.engine.dispose()
