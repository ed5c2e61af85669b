"""Y.js document updates of one logical database on its shard.

A document is (table, prop, key of its parent object). Its realm is never
stored: every read joins the parent object, so a document is seen exactly
by who sees its parent now, and not at all once the parent is deleted
(whose updates :func:`forget_documents` then removes, in the same
transaction). When the parent moves to another realm its updates get the
move's revision (:func:`follow_parent`), so that readers of the new realm
receive them as news.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, tuple_, update

from dxc.storage import schema

y_updates = schema.y_updates
objects = schema.objects

#: Rows per round trip when streaming updates.
BATCH = 200

_PARENT = and_(
    objects.c.db_id == y_updates.c.db_id,
    objects.c.tbl == y_updates.c.tbl,
    objects.c.key == y_updates.c.doc_key,
)


@dataclass(frozen=True)
class YUpdate:
    id: int
    tbl: str
    prop: str
    doc_key: str
    rev: int
    data: bytes


_COLUMNS = (
    y_updates.c.id,
    y_updates.c.tbl,
    y_updates.c.prop,
    y_updates.c.doc_key,
    y_updates.c.rev,
    y_updates.c.data,
)


class YDocStore:
    """Reads and writes the Y updates of database ``db_id`` over one connection."""

    def __init__(self, connection: Connection, db_id: str) -> None:
        self.connection = connection
        self.db_id = db_id

    def add(
        self, tbl: str, prop: str, doc_key: str, rev: int, origin: str | None, data: bytes
    ) -> None:
        self.connection.execute(
            insert(y_updates).values(
                db_id=self.db_id,
                tbl=tbl,
                prop=prop,
                doc_key=doc_key,
                rev=rev,
                origin=origin,
                data=data,
            )
        )

    def changed(
        self,
        realms: Sequence[str],
        tables: Collection[str],
        since: int,
        upto: int,
        not_from: str | None,
    ) -> Iterator[YUpdate]:
        """Updates of documents whose live parent is in ``realms``, with a revision
        in (``since``, ``upto``], not sent by client ``not_from``; by revision."""
        if not realms or not tables:
            return iter(())
        where = [
            y_updates.c.db_id == self.db_id,
            y_updates.c.rev > since,
            y_updates.c.rev <= upto,
            y_updates.c.tbl.in_(sorted(tables)),
            objects.c.realm_id.in_(list(realms)),
            objects.c.deleted.is_(False),
        ]
        if not_from is not None:
            where.append(or_(y_updates.c.origin.is_(None), y_updates.c.origin != not_from))
        return self._pages(where, (y_updates.c.rev, y_updates.c.id))

    def of_document(
        self, tbl: str, prop: str, doc_key: str, since: int, upto: int, not_from: str | None
    ) -> list[YUpdate]:
        """The updates of one document in (``since``, ``upto``], oldest first."""
        where = [
            y_updates.c.db_id == self.db_id,
            y_updates.c.tbl == tbl,
            y_updates.c.doc_key == doc_key,
            y_updates.c.prop == prop,
            y_updates.c.rev > since,
            y_updates.c.rev <= upto,
        ]
        if not_from is not None:
            where.append(or_(y_updates.c.origin.is_(None), y_updates.c.origin != not_from))
        return list(self._pages(where, (y_updates.c.rev, y_updates.c.id), join=False))

    def of_realm(
        self, realm_id: str, after: tuple[str, str, str] | None = None
    ) -> Iterator[YUpdate]:
        """Every update of the documents of ``realm_id``'s live objects, by
        (table, prop, key) and then as stored; only documents after ``after``."""
        where = [
            y_updates.c.db_id == self.db_id,
            objects.c.realm_id == realm_id,
            objects.c.deleted.is_(False),
        ]
        if after is not None:
            where.append(tuple_(y_updates.c.tbl, y_updates.c.prop, y_updates.c.doc_key) > after)
        order = (y_updates.c.tbl, y_updates.c.prop, y_updates.c.doc_key, y_updates.c.id)
        return self._pages(where, order)

    def of_live_objects(self, realm_id: str | None, table: str | None) -> Iterator[YUpdate]:
        """Every update of the documents of live objects (of one realm, of one
        table, when given), by (table, prop, key) and then as stored (an export)."""
        where = [y_updates.c.db_id == self.db_id, objects.c.deleted.is_(False)]
        if realm_id is not None:
            where.append(objects.c.realm_id == realm_id)
        if table is not None:
            where.append(y_updates.c.tbl == table)
        order = (y_updates.c.tbl, y_updates.c.prop, y_updates.c.doc_key, y_updates.c.id)
        return self._pages(where, order)

    def after_revision(self, since: int, upto: int) -> Iterator[YUpdate]:
        """Every update with a revision in (``since``, ``upto``], by revision (a replica's
        copy; documents of deleted parents are gone already)."""
        where = [y_updates.c.db_id == self.db_id, y_updates.c.rev > since,
                 y_updates.c.rev <= upto]
        return self._pages(where, (y_updates.c.rev, y_updates.c.id), join=False)

    def remove_after(self, rev: int) -> None:
        """Delete the updates with a revision after ``rev`` (a replica copying them again)."""
        self.connection.execute(
            delete(y_updates).where(y_updates.c.db_id == self.db_id, y_updates.c.rev > rev)
        )

    def document_count(self) -> int:
        """How many documents (table, prop, key) hold updates."""
        documents = (
            select(y_updates.c.tbl, y_updates.c.prop, y_updates.c.doc_key).distinct()
            .where(y_updates.c.db_id == self.db_id).subquery()
        )
        return self.connection.scalar(select(func.count()).select_from(documents)) or 0

    def has(self, tbl: str, prop: str, doc_key: str, data: bytes) -> bool:
        """Whether the document holds this very update (an import run again)."""
        statement = select(y_updates.c.id).where(
            y_updates.c.db_id == self.db_id,
            y_updates.c.tbl == tbl,
            y_updates.c.doc_key == doc_key,
            y_updates.c.prop == prop,
            y_updates.c.data == data,
        )
        return self.connection.execute(statement.limit(1)).first() is not None

    def piled_up(self, more_than: int) -> list[tuple[str, str, str]]:
        """The documents (table, prop, key) with more than ``more_than`` updates."""
        key = (y_updates.c.tbl, y_updates.c.prop, y_updates.c.doc_key)
        statement = (
            select(*key)
            .where(y_updates.c.db_id == self.db_id)
            .group_by(*key)
            .having(func.count() > more_than)
            .order_by(*key)
        )
        return [(row.tbl, row.prop, row.doc_key) for row in self.connection.execute(statement)]

    def oldest(self, tbl: str, prop: str, doc_key: str, limit: int) -> list[YUpdate]:
        """The first ``limit`` updates of one document, by revision."""
        statement = (
            select(*_COLUMNS)
            .where(
                y_updates.c.db_id == self.db_id,
                y_updates.c.tbl == tbl,
                y_updates.c.doc_key == doc_key,
                y_updates.c.prop == prop,
            )
            .order_by(y_updates.c.rev, y_updates.c.id)
            .limit(limit)
        )
        return [YUpdate(*row) for row in self.connection.execute(statement)]

    def replace(self, updates: Sequence[YUpdate], merged: bytes) -> bool:
        """Put ``merged`` (their merge) in place of ``updates``, if none of them
        changed or went since they were read; whether it was done.

        The newest of them keeps its id and revision and takes ``merged``, so a
        device that has seen it has seen them all, and one that has not gets
        them all; it takes no sender (``origin``), as it holds others' updates
        too. Later updates are not touched."""
        ids = [update.id for update in updates]
        rows = self.connection.execute(
            select(y_updates.c.id, y_updates.c.rev)
            .where(y_updates.c.id.in_(ids))
            .with_for_update()
        )
        now = {row.id: row.rev for row in rows}
        if now != {update.id: update.rev for update in updates}:
            return False
        newest = max(updates, key=lambda update: (update.rev, update.id))
        self.connection.execute(
            update(y_updates).where(y_updates.c.id == newest.id).values(data=merged, origin=None)
        )
        self.connection.execute(
            delete(y_updates).where(y_updates.c.id.in_([i for i in ids if i != newest.id]))
        )
        return True

    def _pages(self, where: list, order: tuple, join: bool = True) -> Iterator[YUpdate]:  # type: ignore[type-arg]
        """Rows in ``order`` (which ends with the unique id), a batch per round trip."""
        source = y_updates.join(objects, _PARENT) if join else y_updates
        last: tuple | None = None  # type: ignore[type-arg]
        while True:
            page = [*where]
            if last is not None:
                page.append(tuple_(*order) > last)
            statement = select(*_COLUMNS).select_from(source).where(*page).order_by(*order)
            rows = [YUpdate(*row) for row in self.connection.execute(statement.limit(BATCH))]
            yield from rows
            if len(rows) < BATCH:
                return
            last = tuple(getattr(rows[-1], column.name) for column in order)


def forget_documents(connection: Connection, db_id: str, tbl: str, keys: Collection[str]) -> None:
    """Delete the documents of the parents ``keys`` of ``tbl`` (they were deleted)."""
    for start in range(0, len(keys), BATCH):
        chunk = list(keys)[start : start + BATCH]
        connection.execute(
            delete(y_updates).where(
                y_updates.c.db_id == db_id,
                y_updates.c.tbl == tbl,
                y_updates.c.doc_key.in_(chunk),
            )
        )


def follow_parent(connection: Connection, db_id: str, tbl: str, key: str, rev: int) -> None:
    """The parent moved to another realm at ``rev``: its documents are news there."""
    connection.execute(
        update(y_updates)
        .where(y_updates.c.db_id == db_id, y_updates.c.tbl == tbl, y_updates.c.doc_key == key)
        .values(rev=rev)
    )
