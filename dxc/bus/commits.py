"""The one way to write to a database: a shard transaction, its revision, and the news.

Every writer (``/sync``, the REST API, imports, maintenance) writes through
:func:`committing`. It opens a transaction on the database's shard; the
revision is taken when the writer first asks for it (the revision lock,
held until the commit, so that revisions become visible in order); and once
the transaction committed, the bus tells every worker's sockets. Nothing is published for a
transaction that rolled back or wrote nothing. A worker's writers of one
database take turns (:func:`~dxc.storage.waits.turn`) before their transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from dxc.bus.base import Bus, Change
from dxc.storage.objects import ObjectStore
from dxc.storage.router import Shard
from dxc.storage.waits import turn


class Write:
    """What a writer holds inside :func:`committing`."""

    def __init__(self, connection: Connection, db_id: str) -> None:
        self.store = ObjectStore(connection, db_id)
        self._rev: int | None = None

    @property
    def rev(self) -> int:
        """This write's revision, taken (with the database's revision lock) at first use."""
        if self._rev is None:
            self._rev = self.store.next_revision()
        return self._rev

    def claim(self, user_id: str, client_identity: str, txids: Collection[str]) -> set[str]:
        """Record ``txids`` of this user's client as applied at this write's revision,
        taking it now if not yet (with the claims: one round trip); the txids
        recorded now (the others were applied by an earlier request)."""
        if self._rev is not None:
            return self.store.claim_applied(user_id, client_identity, txids, self._rev)
        self._rev, claimed = self.store.next_revision_claiming(user_id, client_identity, txids)
        return claimed

    def adopt(self, rev: int) -> int:
        """A replica's write: its revision is the source's ``rev`` (the counter rises to
        it, and its lock is held), so that the source's revision tokens mean the same here."""
        self._rev = self.store.advance_revision(rev)
        return self._rev

    def change(self, shard_id: int, client_id: str | None) -> Change | None:
        """The news of this write, if it wrote anything."""
        if self._rev is None or not self.store.written_realms:
            return None
        return Change.committed(
            self.store.db_id,
            shard_id,
            self._rev,
            self.store.written_realms,
            self.store.written_tables,
            client_id,
        )


@contextmanager
def committing(
    shard: Shard,
    db_id: str,
    bus: Bus,
    client_id: str | None = None,
    *,
    before_news: Callable[[], None] | None = None,
) -> Iterator[Write]:
    """A write to ``db_id`` on ``shard``, committed and published when the block ends.

    ``client_id``: the sync client whose request this is (its own sockets need
    no message about it). ``before_news``: what must be done after the commit
    and before anyone hears of it (an import registers its tables: SQLite has
    one writer, so not inside the shard transaction)."""
    with turn(db_id), shard.transaction() as connection:
        write = Write(connection, db_id)
        yield write
        change = write.change(shard.id, client_id)
    if before_news is not None:
        before_news()
    if change is not None:  # committed: now other devices may learn of it
        bus.publish(change)
