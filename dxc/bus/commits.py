"""The one way to write to a database: a shard transaction, its revision, and the news.

Every writer (``/sync``, the REST API, imports, maintenance) writes through
:func:`committing`. It opens a transaction on the database's shard; the
revision is taken when the writer first asks for it (the revision lock,
held until the commit, so that revisions become visible in order); and once
the transaction committed, the bus tells every worker's sockets, as part of
the commit itself where the bus can (``NOTIFY``). Nothing is published for a
transaction that rolled back or wrote nothing.

A writer that can tell whether others changed what it read (``/sync``) may
take the revision last, on PostgreSQL: it works with a provisional revision
while other writers of the database do the same, and holds the lock only
from :meth:`Write.stamp` to the commit. SQLite runs one writing transaction
at a time anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from dxc.bus.base import Bus, Change
from dxc.storage.objects import PROVISIONAL_REV, ObjectStore
from dxc.storage.router import Shard


class Write:
    """What a writer holds inside :func:`committing`."""

    def __init__(self, connection: Connection, db_id: str, revision_last: bool = False) -> None:
        self.store = ObjectStore(connection, db_id)
        self._rev: int | None = None
        #: Taking the revision last: the head revision before this write read anything.
        self.head: int | None = None
        if revision_last and connection.dialect.name == "postgresql":
            self.head = self.store.unchanged_since = self.store.current_revision()
        self._unstamped = False

    @property
    def rev(self) -> int:
        """This write's revision, taken (with the database's revision lock) at first
        use; :data:`PROVISIONAL_REV` until :meth:`take_revision` when it is taken last."""
        if self._rev is None:
            if self.head is None:
                self._rev = self.store.next_revision()
            else:
                self._rev, self._unstamped = PROVISIONAL_REV, True
        return self._rev

    @property
    def seen(self) -> int:
        """A revision up to which every write had committed when this one began."""
        return self.head if self.head is not None else self.rev - 1

    def take_revision(self) -> None:
        """Take the revision now if it is provisional (its lock is held until the commit)."""
        if self._rev == PROVISIONAL_REV:
            self._rev = self.store.next_revision()

    def stamp(self) -> list[tuple[str, str | None]]:
        """Give the revision taken last (:meth:`take_revision`, if not done yet) to what
        this write stored, and say what others committed since :attr:`head`
        (:meth:`ObjectStore.stamp`): the writer decides whether that changed what it
        read, and if so raises, which rolls everything back. Once; then a no-op."""
        if not self._unstamped:
            return []
        self.take_revision()
        self._unstamped = False
        return self.store.stamp(PROVISIONAL_REV, self.rev, self.head or 0)

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
    revision_last: bool = False,
) -> Iterator[Write]:
    """A write to ``db_id`` on ``shard``, committed and published when the block ends.

    ``client_id``: the sync client whose request this is (its own sockets need
    no message about it). ``before_news``: what must be done after the commit
    and before anyone hears of it (an import registers its tables: SQLite has
    one writer, so not inside the shard transaction). ``revision_last``: the
    writer checks what :meth:`Write.stamp` returns (see the module's docstring)."""
    with shard.transaction() as connection:
        write = Write(connection, db_id, revision_last)
        yield write
        write.stamp()
        change = write.change(shard.id, client_id)
        if change is not None and before_news is None and bus.publish_in(connection, change):
            change = None  # goes out with the commit
    if before_news is not None:
        before_news()
    if change is not None:  # committed: now other devices may learn of it
        bus.publish(change)
