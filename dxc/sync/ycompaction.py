"""Compacting Y.js documents: a document's piled-up updates merged into one.

Every update a client sends is stored (docs/yjs.md), so a document edited for
long is thousands of small updates that each new device downloads. A
compaction merges a document's oldest updates with ``pycrdt`` (``yrs``) into
one and stores it in place of them (:meth:`YDocStore.replace`: it keeps the
newest one's revision, so resume points stay valid, and updates stored
meanwhile are untouched). ``pycrdt`` reads only Yjs's V1 update format and the
client writes V2, so each update is converted (:mod:`dxc.protocol.yupdates`).

The merge is checked before it replaces anything: the merged update must give
the same state vector as the updates applied one by one, read back from the V2
that is stored (a document with a gap, an update whose predecessor is missing,
fails this and is left as it is), and that V2 must convert back to itself. A document whose updates
are not readable Yjs updates is left as it is and logged.

A compaction runs as a job (:mod:`dxc.jobs`) that storing an update schedules
at most every ``DXC_Y_COMPACT_EVERY`` seconds per database and process, and
from ``flask dxc compact-ydocs``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from pycrdt import Doc, get_state, merge_updates

from dxc.config import Settings
from dxc.cooperative import take_turns
from dxc.jobs import Jobs, RQJobs
from dxc.protocol.lib0 import Decoder
from dxc.protocol.yupdates import v1_to_v2, v2_to_v1
from dxc.storage.router import ShardRouter
from dxc.storage.ydocs import YDocStore

log = logging.getLogger(__name__)

#: Updates merged at most in one step (bounds memory and a transaction's size);
#: a larger pile takes several steps.
MAX_MERGED = 1000


class NotMergeable(ValueError):
    """The updates cannot be merged safely; the document is left as it is."""


def merge(updates: Sequence[bytes]) -> bytes:
    """The client's V2 ``updates`` merged into one V2 update."""
    try:
        v1 = []
        for count, update in enumerate(updates, start=1):
            v1.append(v2_to_v1(update))
            if count % 50 == 0:
                take_turns()
        result = v1_to_v2(merge_updates(*v1))
        # what a client will read, in V1 again: that is what must be the same document
        read_back = v2_to_v1(result)
        one_by_one = Doc()
        for count, update in enumerate(v1, start=1):
            one_by_one.apply_update(update)
            if count % 50 == 0:
                take_turns()
        at_once = Doc()
        at_once.apply_update(read_back)
        same_bytes = v1_to_v2(read_back) == result
    except Exception as error:  # whatever the converter or yrs make of bad bytes
        raise NotMergeable(f"not readable as Yjs updates: {error}") from None
    expected = _state_vector(one_by_one.get_state())
    if _state_vector(at_once.get_state()) != expected or _state_vector(
        get_state(read_back)
    ) != expected:
        raise NotMergeable("the merge is not the same document (a missing update?)")
    if not same_bytes:
        raise NotMergeable("the merged update does not convert back to itself")
    return result


def _state_vector(encoded: bytes) -> dict[int, int]:
    data = Decoder(encoded)
    return {data.var_uint(): data.var_uint() for _ in range(data.var_uint())}


def compact_database(router: ShardRouter, db_id: str, more_than: int) -> int:
    """Compact the documents of ``db_id`` with more than ``more_than`` updates;
    how many updates went."""
    shard = router.shard_for(db_id)
    with shard.transaction(read_only=True) as connection:
        piles = YDocStore(connection, db_id).piled_up(more_than)
    removed = 0
    for tbl, prop, doc_key in piles:
        removed += compact_document(router, db_id, tbl, prop, doc_key)
        take_turns()
    return removed


def compact_document(router: ShardRouter, db_id: str, tbl: str, prop: str, doc_key: str) -> int:
    """Merge the document's updates, :data:`MAX_MERGED` at a time; how many went."""
    removed = 0
    while True:
        shard = router.shard_for(db_id)
        with shard.transaction(read_only=True) as connection:
            updates = YDocStore(connection, db_id).oldest(tbl, prop, doc_key, MAX_MERGED)
        if len(updates) < 2:
            return removed
        try:
            merged = merge([update.data for update in updates])
        except NotMergeable as error:
            log.warning(
                "Y document %s %s.%s %r not compacted: %s", db_id, tbl, prop, doc_key, error
            )
            return removed
        with shard.transaction() as connection:
            if not YDocStore(connection, db_id).replace(updates, merged):
                return removed  # changed meanwhile: the next compaction sees it anew
        removed += len(updates) - 1
        if len(updates) < MAX_MERGED:
            return removed


class YCompaction:
    """Schedules compactions when updates are stored (:meth:`stored`)."""

    def __init__(self, settings: Settings, router: ShardRouter, jobs: Jobs) -> None:
        self.settings = settings
        self.router = router
        self.jobs = jobs
        self._scheduled: dict[str, float] = {}

    def stored(self, db_id: str) -> None:
        """An update of ``db_id`` was stored: compact its piles, at most every
        ``y_compact_every`` seconds."""
        now = time.monotonic()
        every = self.settings.y_compact_every
        if now - self._scheduled.get(db_id, -every) < every:
            return
        self._scheduled[db_id] = now
        self.jobs.enqueue(*self._job(db_id))

    def _job(self, db_id: str) -> tuple[Callable[..., None], Any]:
        """In a worker process (RQ) a function found by name that builds its own
        services; in this process, one with this process's router."""
        if isinstance(self.jobs, RQJobs):
            return compact_ydocs_job, db_id
        return self.compact, db_id

    def compact(self, db_id: str, more_than: int | None = None) -> int:
        """Compact ``db_id``'s documents with more than ``more_than`` updates
        (default ``y_compact_after``); how many updates went."""
        limit = more_than or self.settings.y_compact_after
        removed = compact_database(self.router, db_id, limit)
        if removed:
            log.info("compacted %d Y update(s) of %s", removed, db_id)
        return removed


def compact_ydocs_job(db_id: str) -> None:
    """The RQ job: a worker reads the server's configuration once per process."""
    _worker_compaction().compact(db_id)


_worker: YCompaction | None = None


def _worker_compaction() -> YCompaction:
    global _worker
    if _worker is None:
        from dxc.config import settings_or_exit
        from dxc.services import build_services

        _worker = build_services(settings_or_exit()).ycompaction
    return _worker
