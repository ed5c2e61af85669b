"""The bus for SQLite: each listening process polls the revision counters.

SQLite has no notifications, and the embedded default still runs several
gunicorn workers on one file. So a process with open sockets reads, once a
second, the ``revisions`` row of every database it has sockets for, and
when one moved, tells that database's sockets "anything may have changed"
(they then compare with the database, as after a ``ready``). A change this
process commits itself is delivered at once, with its realms. Cost: one
small query per second per worker with sockets; delay: up to a second
across workers.
"""

from __future__ import annotations

from collections.abc import Callable

from dxc.bus.base import Bus, Change
from dxc.storage.objects import ObjectStore
from dxc.storage.router import ShardRouter, UnknownDatabase

POLL_SECONDS = 1.0  # at most WAKE_SECONDS, so that stop() is prompt
#: Seconds between two polls of a bus that notifies, in case a notification was lost.
SAFETY_POLL_SECONDS = 5.0


class PollingBus(Bus):
    name = "polling-bus"

    def __init__(self, router: ShardRouter) -> None:
        super().__init__()
        self.router = router
        #: The newest revision each watched database is known to have reached.
        self._seen: dict[str, int] = {}

    def _send(self, change: Change) -> None:
        # Other processes see the counter move at their next poll; this one learns now.
        if self._listener is not None:
            self._known(change)

    def _known(self, change: Change | None) -> None:
        """Deliver ``change``; the polls need not announce its revision again."""
        if change is not None and change.rev is not None:
            self._seen[change.db_id] = max(self._seen.get(change.db_id, 0), change.rev)
        self._received(change)

    def _listen(self, connected: Callable[[], None]) -> None:
        connected()
        while not self._stopping.wait(POLL_SECONDS):
            self._poll()

    def _poll(self) -> None:
        assert self._listener is not None
        watched = self._listener.databases()
        by_shard: dict[int, list[str]] = {}
        for db_id in watched:
            try:
                by_shard.setdefault(self.router.shard_for(db_id).location, []).append(db_id)
            except UnknownDatabase:
                continue
        keep = set(watched)
        self._seen = {db: rev for db, rev in self._seen.items() if db in keep}
        for shard_id, db_ids in by_shard.items():
            with self.router.shard(shard_id).transaction(read_only=True) as connection:
                heads = ObjectStore.head_revisions(connection, db_ids)
            for db_id, rev in heads.items():
                if rev > self._seen.get(db_id, 0):
                    self._seen[db_id] = rev
                    key = self.router.shard_for(db_id).id  # what its revision tokens say
                    self._received(Change.anything(db_id, key, rev))
