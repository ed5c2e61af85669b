"""Requests and open sockets per database, counted by each worker process and written to
the control database every few seconds, so that ``flask dxc stats`` sees every worker of
every installation node sharing it (docs/operations.md, docs/migration.md).

The request path only adds to a dict in memory (no statement, no lock: under gevent
a worker's greenlets never interleave inside one increment); a background greenlet
flushes the counts, added to the worker's row of their minute, and rewrites the
worker's socket gauges with a heartbeat, so the sockets of a worker that died drop
out of the sum after :data:`ALIVE_FLUSHES` missed flushes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping

from sqlalchemy import Engine

from dxc.storage import activity as store

log = logging.getLogger(__name__)

#: A worker whose socket gauges are older than this many flush periods is taken for dead.
ALIVE_FLUSHES = 3
#: How long per-minute counts are kept (``stats --minutes`` reaches this far back).
KEEP_MINUTES = 24 * 60


def current_minute(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 60)


class Activity:
    """This process's counts, and the greenlet that writes them out."""

    def __init__(
        self, control: Engine, served_sockets: Callable[[], Mapping[str, int]], period: float
    ) -> None:
        """``served_sockets``: the ``/changes`` sockets this process serves, per database."""
        self.control = control
        self.period = period
        self._served_sockets = served_sockets
        self._counts: defaultdict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
        self._relayed: Counter[str] = Counter()
        self._had_sockets = False
        self._pruned = 0
        self.worker_id = ""

    def synced(self, db_id: str) -> None:
        """A ``/sync`` request of ``db_id`` is served here."""
        self._counts[db_id, current_minute()][0] += 1

    def forwarded(self, db_id: str) -> None:
        """A request of ``db_id`` is forwarded to the installation it moved to."""
        self._counts[db_id, current_minute()][1] += 1

    @contextlib.contextmanager
    def relaying(self, db_id: str) -> Iterator[None]:
        """A ``/changes`` socket of ``db_id`` is relayed to its new installation meanwhile."""
        self._relayed[db_id] += 1
        try:
            yield
        finally:
            self._relayed[db_id] -= 1

    def start(self) -> None:
        """Flush every ``period`` seconds from now on (a greenlet under gevent); call it in
        the worker process, after the fork."""
        self.worker_id = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        threading.Thread(target=self._loop, name="dxc-activity", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.period)
            try:
                self.flush()
            except Exception as error:  # a control database that does not answer: next time
                log.warning("writing the activity counts: %s", error)

    def flush(self, now: float | None = None) -> None:
        """Write what was counted since the last flush, and the sockets open now."""
        now = time.time() if now is None else now
        counts, self._counts = self._counts, defaultdict(lambda: [0, 0])
        gauges = self._gauges()
        if not (counts or gauges or self._had_sockets or self._pruned < current_minute(now)):
            return
        try:
            with self.control.begin() as connection:
                store.add_counts(
                    connection, self.worker_id, {k: (s, f) for k, (s, f) in counts.items()}
                )
                if gauges or self._had_sockets:
                    store.replace_sockets(connection, self.worker_id, gauges, int(now))
                if self._pruned < current_minute(now):  # once a minute
                    store.prune(
                        connection, current_minute(now) - KEEP_MINUTES,
                        int(now - 10 * ALIVE_FLUSHES * self.period),
                    )
        except Exception:
            self._merge(counts)  # counted again with the next flush
            raise
        self._had_sockets = bool(gauges)
        self._pruned = max(self._pruned, current_minute(now))

    def _gauges(self) -> dict[str, tuple[int, int]]:
        served = self._served_sockets()
        return {
            db_id: (served.get(db_id, 0), self._relayed.get(db_id, 0))
            for db_id in set(served) | {d for d, n in self._relayed.items() if n}
        }

    def _merge(self, counts: Mapping[tuple[str, int], list[int]]) -> None:
        for key, (syncs, forwarded) in counts.items():
            pending = self._counts[key]
            pending[0] += syncs
            pending[1] += forwarded
