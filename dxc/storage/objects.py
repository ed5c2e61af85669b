"""The synced data of one logical database on its shard.

One row per (table, key) holds the current value, its realm and owner, the
revision that last touched it and a tombstone flag. A pull is then "rows of
my realms with a revision above mine", which already is the net effect per
key that the client needs.

The revision counter is taken with ``UPDATE … RETURNING`` inside the writing
transaction, so its row lock orders commits: a revision is never visible
before every smaller one is committed, and a pull that reads the counter and
then the rows up to it misses nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Row,
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from dxc.errors import Moving
from dxc.storage import schema, ydocs
from dxc.storage.clock import utcnow
from dxc.storage.engines import in_transaction
from dxc.storage.router import NotOnShard

objects = schema.objects

#: Rows fetched per round trip when streaming a pull.
BATCH = 500
#: Objects written at once (an import, a moved database's copy, a replica's round) after
#: which the table's planner statistics are refreshed at once (:func:`refresh_statistics`).
BULK_WRITE = 1000


@dataclass
class StoredObject:
    tbl: str
    key: str
    realm_id: str
    owner: str | None
    rev: int
    deleted: bool
    value: str | None  # TSON text; None for tombstones

    def tombstone(self, rev: int) -> StoredObject:
        """The row that deletes this object at ``rev``: its realm and owner stay, for
        the pulls of that realm and for whoever may see the deletion."""
        return StoredObject(self.tbl, self.key, self.realm_id, self.owner, rev, True, None)


@dataclass(frozen=True)
class AppliedTransaction:
    """A client transaction recorded as applied: a resend of its txid is skipped."""

    user_id: str
    client_identity: str
    txid: str
    rev: int


@dataclass(frozen=True)
class ConsistentOperation:
    """A where-clause operation kept to rebase offline writes based on an older
    revision over it (:meth:`ObjectStore.consistent_operations_after`)."""

    tbl: str
    user_id: str | None  # None (older rows): never replayed
    client_identity: str
    rev: int
    operation: str  # TSON text: {"type", "criteria", "changeSpec"?}


_COLUMNS = (
    objects.c.tbl,
    objects.c.key,
    objects.c.realm_id,
    objects.c.owner,
    objects.c.rev,
    objects.c.deleted,
    objects.c.value,
)


#: The columns ``put_many`` writes besides ``db_id`` (StoredObject's fields).
_PUT_COLUMNS = ("tbl", "key", "realm_id", "owner", "rev", "deleted", "value")


def _replacing(  # type: ignore[no-untyped-def]
    statement: postgresql.Insert | sqlite.Insert, tombstones_only: bool = False
):
    """``statement``, replacing the row of a key already present (only a tombstone if
    ``tombstones_only``: a live object stays as it is, and no row of it comes back)."""
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[objects.c.db_id, objects.c.tbl, objects.c.key],
        set_={name: excluded[name] for name in _PUT_COLUMNS if name not in ("tbl", "key")},
        where=objects.c.deleted if tombstones_only else None,
    )


def _array_parameter(name: str, item_type: Any = Text) -> ColumnElement[Any]:
    """PostgreSQL: the parameter ``name``, bound as one array literal (:func:`_text_array`
    and its kin) and cast to an array of ``item_type``."""
    return cast(bindparam(name, type_=Text), postgresql.ARRAY(item_type))


def _put_unnested(tombstones_only: bool = False):  # type: ignore[no-untyped-def]
    """PostgreSQL: ``INSERT … SELECT :db_id, unnest(:tbl::text[]), unnest(:key::text[]), …``,
    one array literal per column (see :func:`_text_array`), side by side as rows."""
    return _replacing(postgresql.insert(objects).from_select(
        ["db_id", *_PUT_COLUMNS],
        select(
            bindparam("db_id", type_=objects.c.db_id.type),
            *(
                func.unnest(_array_parameter(name, objects.c[name].type))
                for name in _PUT_COLUMNS
            ),
        ),
    ), tombstones_only)


_PUT_UNNESTED = _put_unnested()
#: New keys only (an insert): what it wrote comes back; a key it left out holds a live object.
_PUT_NEW_UNNESTED = _put_unnested(tombstones_only=True).returning(objects.c.tbl, objects.c.key)


def _text_array(values: list[str | None]) -> str:
    """``values`` as the text of a PostgreSQL array: ``{"a","b\\"c",NULL}``.

    One text parameter per column, not a list: psycopg2 sends a list as
    ``ARRAY['a', …]``, an expression the server parses element by element,
    which takes longer than the insert itself for a batch of thousands. The
    usual case, no NULL, is escaped in one go: joined with NUL, which no stored
    text holds (PostgreSQL refuses it) and the count checks."""
    if None not in values:
        joined = "\x00".join(values)  # type: ignore[arg-type]
        if joined.count("\x00") == len(values) - 1:
            escaped = joined.replace("\\", "\\\\").replace('"', '\\"')
            return '{"' + escaped.replace("\x00", '","') + '"}'
    return "{" + ",".join(
        "NULL" if value is None else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for value in values
    ) + "}"


def _number_array(values: list[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _boolean_array(values: list[bool]) -> str:
    return "{" + ",".join("t" if value else "f" for value in values) + "}"


#: How each column of ``put_many`` is written as an array.
_ARRAYS = {name: _text_array for name in _PUT_COLUMNS} | {
    "rev": _number_array, "deleted": _boolean_array,
}
#: SQLite: the ``RETURNING`` clause makes SQLAlchemy send the rows as multi-row
#: ``VALUES`` batches ("insertmanyvalues") instead of one statement per row.
_PUT_ROWS = _replacing(sqlite.insert(objects)).returning(objects.c.key)
_PUT_NEW_ROWS = _replacing(sqlite.insert(objects), True).returning(objects.c.tbl, objects.c.key)

# Statements of every sync, built once: SQLAlchemy then only looks up their
# compiled form (building a statement per call cost more than running it).
_revisions = schema.revisions
_applied = schema.applied_transactions
#: The next revision, taking the counter's row lock (:meth:`ObjectStore.next_revision`).
_TAKE_REVISION = (
    update(_revisions)
    .where(_revisions.c.db_id == bindparam("counter"))
    .values(rev=_revisions.c.rev + 1)
    .returning(
        _revisions.c.rev,
        _revisions.c.frozen,
        _revisions.c.criteria_rev,
        _revisions.c.access_stamp,
        _revisions.c.departure_rev,
    )
)
_CURRENT_REVISION = select(
    _revisions.c.rev, _revisions.c.access_stamp, _revisions.c.departure_rev
).where(_revisions.c.db_id == bindparam("db_id"))
_NEW_ACCESS_STAMP = (
    update(_revisions)
    .where(_revisions.c.db_id == bindparam("counter"))
    .values(access_stamp=bindparam("stamp"))
)


#: The dialects a shard may be on, and how each is given a list of text values bound as
#: one parameter: PostgreSQL takes one array literal (:func:`_text_array`); SQLite an
#: ``IN`` list, one parameter per value.
_LIST_PARAMETER: dict[str, Callable[[list[str]], Any]] = {
    "postgresql": _text_array,
    "sqlite": list,
}


def _one_of(column: ColumnElement[str], name: str, dialect: str) -> ColumnElement[bool]:
    """``column`` is one of the list bound as ``name``. On PostgreSQL ``= ANY(:name)``,
    the same plan as ``IN``: an ``IN`` list of one bound parameter per value cost
    SQLAlchemy (which renders them at each execution) and psycopg2 twice the CPU
    (``get_many``: 9.8 ms for 1000 keys, 0.28 for 4; with the array 4.0 and 0.17)."""
    if dialect == "postgresql":
        return column == func.any(_array_parameter(name))
    return column.in_(bindparam(name, expanding=True))


#: Per dialect: the rows of some keys of a table.
_BY_KEYS = {
    dialect: select(*_COLUMNS).where(
        objects.c.db_id == bindparam("db_id"),
        objects.c.tbl == bindparam("tbl"),
        _one_of(objects.c.key, "keys", dialect),
    )
    for dialect in _LIST_PARAMETER
}
#: Per dialect: the rows of some realms written in a range of revisions.
_CHANGED = {
    dialect: select(*_COLUMNS).where(
        objects.c.db_id == bindparam("db_id"),
        _one_of(objects.c.realm_id, "realms", dialect),
        objects.c.rev > bindparam("after"),
        objects.c.rev <= bindparam("upto"),
    )
    for dialect in _LIST_PARAMETER
}
#: Per dialect: the objects that left some realms in a range of revisions.
_DEPARTURES = {
    dialect: select(schema.departures.c.tbl, schema.departures.c.key).where(
        schema.departures.c.db_id == bindparam("db_id"),
        _one_of(schema.departures.c.realm_id, "realms", dialect),
        schema.departures.c.rev > bindparam("after"),
        schema.departures.c.rev <= bindparam("upto"),
    )
    for dialect in _LIST_PARAMETER
}
#: Per dialect: record txids as applied, returning those not recorded before.
_CLAIM = {
    name: dialect.insert(_applied)
    .on_conflict_do_nothing(index_elements=list(_applied.primary_key.columns))
    .returning(_applied.c.txid)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
#: PostgreSQL: :data:`_TAKE_REVISION` and :data:`_CLAIM` in one round trip
#: (:meth:`ObjectStore.next_revision_claiming`): the claims are made at the revision
#: taken, and the txids recorded now come back as an array. (The database is bound as
#: ``counter``: a parameter named after a column of the ``UPDATE`` would be SET.)
_TAKEN = _TAKE_REVISION.cte("taken")
_TXIDS = func.unnest(_array_parameter("txids")).table_valued("txid").render_derived(name="txids")
_CLAIMED = (
    postgresql.insert(_applied)
    .from_select(
        ["db_id", "user_id", "client_identity", "txid", "rev", "created"],
        select(
            bindparam("counter", type_=_applied.c.db_id.type),
            bindparam("user_id", type_=_applied.c.user_id.type),
            bindparam("client_identity", type_=_applied.c.client_identity.type),
            _TXIDS.c.txid,
            _TAKEN.c.rev,
            bindparam("created", type_=_applied.c.created.type),
        )
        .select_from(_TAKEN.join(_TXIDS, true()))
        .where(_TAKEN.c.frozen.is_(False)),
    )
    .on_conflict_do_nothing(index_elements=list(_applied.primary_key.columns))
    .returning(_applied.c.txid)
    .cte("claimed")
)
_TAKE_REVISION_CLAIMING = select(
    _TAKEN.c.rev,
    _TAKEN.c.frozen,
    _TAKEN.c.criteria_rev,
    _TAKEN.c.access_stamp,
    _TAKEN.c.departure_rev,
    func.array(select(_CLAIMED.c.txid).scalar_subquery()).label("claimed"),
)
#: The first round trip of the streamed statements built once (:meth:`ObjectStore._stream`).
_FIRST_BATCH = {changed: changed.limit(BATCH + 1) for changed in _CHANGED.values()}


@dataclass(frozen=True)
class CounterNotes:
    """What the revision counter's row notes besides the revision, read with it (by a
    writer under its lock) and kept up with the store's own writes: what a reader of
    the revisions up to it may skip. None where not known."""

    #: Renewed by every change of the access index (``revisions.access_stamp``): who
    #: a user stands for is what it was at this stamp. None also once the store
    #: changed the index itself.
    access_stamp: int | None = None
    #: The newest revision at which an object left a realm (``revisions.departure_rev``).
    departure_rev: int | None = None


class ObjectStore:
    """Reads and writes the objects of database ``db_id`` over one connection."""

    def __init__(
        self, connection: Connection, db_id: str, notes: CounterNotes = CounterNotes()
    ) -> None:
        """``notes``: what the counter noted, when the caller knows it (a write it
        committed a moment ago)."""
        self.connection = connection
        self.db_id = db_id
        #: Realms and tables this store wrote to (or that objects left), for notifications.
        self.written_realms: set[str] = set()
        self.written_tables: set[str] = set()
        #: The newest revision with a where-clause operation, read with the revision this
        #: store took (under its lock: no other writer adds one before the commit); None
        #: when not known.
        self.criteria_rev: int | None = None
        self.notes = notes
        self._dialect = connection.dialect.name
        self._insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        self._list = _LIST_PARAMETER[self._dialect]

    # --- revisions ----------------------------------------------------------

    def create_revision_counter(self) -> None:
        statement = self._insert(schema.revisions).values(
            db_id=self.db_id, rev=0, criteria_rev=0, access_stamp=_new_stamp(), departure_rev=0
        )
        self.connection.execute(statement.on_conflict_do_nothing())

    def current_revision(self) -> int:
        """The database's head revision (and the :attr:`notes` at it); :class:`NotOnShard`
        if this shard has no counter of it (the database moved away)."""
        counter = self.connection.execute(_CURRENT_REVISION, {"db_id": self.db_id}).first()
        if counter is None:
            raise NotOnShard(self.db_id)
        self.notes = CounterNotes(counter.access_stamp, counter.departure_rev)
        return counter.rev

    def stamp_access(self) -> None:
        """Note on the counter that the access index changed: a new random stamp, so
        that no process takes what it read before for current (a stamp rolled back
        with a savepoint comes back with the index as it was)."""
        self.connection.execute(_NEW_ACCESS_STAMP, {"counter": self.db_id, "stamp": _new_stamp()})
        self.notes = replace(self.notes, access_stamp=None)

    def fence_unrevisioned_write(self, replica: bool = False) -> None:
        """Let a write that takes no revision (a blob) pass the fence that
        :meth:`next_revision` is for, in its own transaction, before it writes.

        The counter row is read with PostgreSQL's ``FOR KEY SHARE``: a move's hold
        (``FOR UPDATE``) and its fence (the row's ``DELETE``) wait for this
        transaction and it waits for them, while :meth:`next_revision`'s update of
        the counter neither waits nor makes wait. SQLite runs one writing
        transaction at a time (``BEGIN IMMEDIATE``), so there the read suffices.
        :class:`NotOnShard` when the database moved away, :class:`Moving` when it
        is frozen (moving to another installation), as for any write, unless
        ``replica``: the replication writing a copy that waits to take over is
        why a copy is frozen."""
        counter = self.connection.execute(
            select(schema.revisions.c.frozen)
            .where(schema.revisions.c.db_id == self.db_id)
            .with_for_update(read=True, key_share=True)
        ).first()
        if counter is None:
            raise NotOnShard(self.db_id)
        if counter.frozen and not replica:
            raise Moving(f"{self.db_id} takes no writes here: it is moving between installations")

    def next_revision(self) -> int:
        """Increment the counter and hold its row lock until this transaction ends.

        A shard without the counter does not hold the database: it was created
        with one, and a move removes it from the old shard (while writers wait
        for its lock) before the switch, so that a writer who still routes
        here writes nothing (:class:`NotOnShard`) instead of writing where
        nobody reads. A frozen database (:meth:`freeze`) refuses too: the
        transaction must roll back."""
        return self._taken(self.connection.execute(_TAKE_REVISION, {"counter": self.db_id}).first())

    def next_revision_claiming(
        self, user_id: str, client_identity: str, txids: Collection[str]
    ) -> tuple[int, set[str]]:
        """:meth:`next_revision`, and :meth:`claim_applied` of ``txids`` at it: the
        revision, and the txids recorded now. One round trip on PostgreSQL, which is
        one fewer while the revision lock is held (a device's push)."""
        if not txids or self._dialect != "postgresql":
            rev = self.next_revision()
            return rev, self.claim_applied(user_id, client_identity, txids, rev)
        row = self.connection.execute(
            _TAKE_REVISION_CLAIMING,
            {
                "counter": self.db_id,
                "user_id": user_id,
                "client_identity": client_identity,
                "txids": _text_array(list(txids)),
                "created": utcnow(),
            },
        ).first()
        return self._taken(row), set(row.claimed)

    def _taken(self, counter: Row | None) -> int:
        """The revision in ``counter`` (the counter's row after taking one), unless
        the database is not here or is frozen."""
        if counter is None:
            raise NotOnShard(self.db_id)
        if counter.frozen:
            raise Moving(
                f"{self.db_id} takes no writes here: it is moving between installations"
            )
        self.criteria_rev = counter.criteria_rev
        self.notes = CounterNotes(counter.access_stamp, counter.departure_rev)
        return counter.rev

    def freeze(self, frozen: bool = True) -> int:
        """Stop (or resume) local writes; the last revision written. Waits for the
        revision lock, so every write that took a revision before has committed."""
        statement = (
            update(schema.revisions)
            .where(schema.revisions.c.db_id == self.db_id)
            .values(frozen=frozen)
            .returning(schema.revisions.c.rev)
        )
        rev = self.connection.scalar(statement)
        if rev is None:
            raise NotOnShard(self.db_id)
        return rev

    def head(self) -> tuple[int, bool]:
        """The current revision, and whether local writes are frozen."""
        row = self.connection.execute(
            select(schema.revisions.c.rev, schema.revisions.c.frozen)
            .where(schema.revisions.c.db_id == self.db_id)
        ).first()
        return (0, False) if row is None else (row.rev, row.frozen)

    @staticmethod
    def head_revisions(connection: Connection, db_ids: Sequence[str]) -> dict[str, int]:
        """The current revision of each of ``db_ids`` that has a counter on this shard."""
        table = schema.revisions
        heads: dict[str, int] = {}
        for start in range(0, len(db_ids), BATCH):
            rows = connection.execute(
                select(table.c.db_id, table.c.rev).where(
                    table.c.db_id.in_(db_ids[start : start + BATCH])
                )
            )
            heads.update((row.db_id, row.rev) for row in rows)
        return heads

    # --- reading ------------------------------------------------------------

    def get_many(self, tbl: str, keys: Iterable[str]) -> dict[str, StoredObject]:
        """The rows (live or tombstones) of ``keys`` in ``tbl``."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, StoredObject] = {}
        for start in range(0, len(keys), BATCH):
            rows = self.connection.execute(
                _BY_KEYS[self._dialect],
                {"db_id": self.db_id, "tbl": tbl, "keys": self._list(keys[start : start + BATCH])},
            )
            found.update((row.key, StoredObject(*row)) for row in rows)
        return found

    def live_objects(self, tbl: str, realms: Sequence[str]) -> Iterator[StoredObject]:
        """Every live object of ``tbl`` in ``realms`` (for criteria evaluation)."""
        yield from self._stream(
            select(*_COLUMNS).where(
                objects.c.db_id == self.db_id,
                objects.c.tbl == tbl,
                objects.c.realm_id.in_(realms),
                objects.c.deleted.is_(False),
            )
        )

    def listing(self, tbl: str, realms: Sequence[str] | None = None) -> Iterator[StoredObject]:
        """Every live object of ``tbl`` (only of ``realms`` if given), in key order (REST reads)."""
        query = select(*_COLUMNS).where(
            objects.c.db_id == self.db_id, objects.c.tbl == tbl, objects.c.deleted.is_(False)
        )
        if realms is not None:
            query = query.where(objects.c.realm_id.in_(realms))
        yield from self._stream(query.order_by(objects.c.key))

    def live_keys_in_realm(self, realm_id: str, limit: int) -> list[tuple[str, str]]:
        """(table, key) of up to ``limit`` live objects of ``realm_id``."""
        rows = self.connection.execute(
            select(objects.c.tbl, objects.c.key)
            .where(
                objects.c.db_id == self.db_id,
                objects.c.realm_id == realm_id,
                objects.c.deleted.is_(False),
            )
            .limit(limit)
        )
        return [(row.tbl, row.key) for row in rows]

    def export_rows(
        self, realm_id: str | None = None, tables: Collection[str] | None = None
    ) -> Iterator[StoredObject]:
        """Live objects (of one realm, of some tables) ordered by realm, table and key."""
        query = select(*_COLUMNS).where(
            objects.c.db_id == self.db_id, objects.c.deleted.is_(False)
        )
        if realm_id is not None:
            query = query.where(objects.c.realm_id == realm_id)
        if tables is not None:
            query = query.where(objects.c.tbl.in_(tables))
        yield from self._stream(query.order_by(objects.c.realm_id, objects.c.tbl, objects.c.key))

    def changed_rows(self, after: int, upto: int) -> Iterator[StoredObject]:
        """Every row written in revisions (after, upto], tombstones included, by revision."""
        yield from self._stream(
            select(*_COLUMNS)
            .where(objects.c.db_id == self.db_id, objects.c.rev > after, objects.c.rev <= upto)
            .order_by(objects.c.rev, objects.c.tbl, objects.c.key)
        )

    def departure_rows(self, after: int, upto: int) -> list[tuple[str, str, str, int]]:
        """(table, key, realm, revision) of the departures in revisions (after, upto]."""
        table = schema.departures
        rows = self.connection.execute(
            select(table.c.tbl, table.c.key, table.c.realm_id, table.c.rev)
            .where(table.c.db_id == self.db_id, table.c.rev > after, table.c.rev <= upto)
            .order_by(table.c.rev)
        )
        return [(row.tbl, row.key, row.realm_id, row.rev) for row in rows]

    def live_counts(self) -> dict[str, int]:
        """How many live objects each table holds."""
        rows = self.connection.execute(
            select(objects.c.tbl, func.count())
            .where(objects.c.db_id == self.db_id, objects.c.deleted.is_(False))
            .group_by(objects.c.tbl)
        )
        return {tbl: count for tbl, count in rows}

    def live_total(self) -> int:
        """How many live objects the database holds (what a shard's listing and a move's
        plan weigh it by)."""
        return self.connection.scalar(
            select(func.count()).select_from(objects).where(
                objects.c.db_id == self.db_id, objects.c.deleted.is_(False)
            )
        ) or 0

    def advance_revision(self, rev: int) -> int:
        """Raise the counter to at least ``rev`` (a replica takes its source's revisions),
        holding its row lock like :meth:`next_revision` (and, like it, refusing a shard
        the database moved away from)."""
        counter = schema.revisions.c.rev
        statement = (
            update(schema.revisions)
            .where(schema.revisions.c.db_id == self.db_id)
            .values(rev=case((counter < rev, rev), else_=counter))
            .returning(counter)
        )
        advanced = self.connection.scalar(statement)
        if advanced is None:
            raise NotOnShard(self.db_id)
        return advanced

    def live_heads(
        self, tbl: str | None = None, realm_id: str | None = None
    ) -> list[StoredObject]:
        """The live objects of ``tbl`` and/or ``realm_id`` without their values (to clear them)."""
        query = select(
            objects.c.tbl, objects.c.key, objects.c.realm_id, objects.c.owner, objects.c.rev
        ).where(objects.c.db_id == self.db_id, objects.c.deleted.is_(False))
        if tbl is not None:
            query = query.where(objects.c.tbl == tbl)
        if realm_id is not None:
            query = query.where(objects.c.realm_id == realm_id)
        return [StoredObject(*row, False, None) for row in self.connection.execute(query)]

    def has_rows(self, tbl: str) -> bool:
        """Whether table ``tbl`` ever held an object (live or deleted)."""
        query = select(objects.c.key).where(objects.c.db_id == self.db_id, objects.c.tbl == tbl)
        return self.connection.scalar(query.limit(1)) is not None

    def changed(
        self, realms: Sequence[str], after: int, upto: int
    ) -> Iterator[StoredObject]:
        """Rows of ``realms`` touched in revisions (after, upto], tombstones included."""
        yield from self._stream(
            _CHANGED[self._dialect],
            {"db_id": self.db_id, "realms": self._list(list(realms)), "after": after,
             "upto": upto},
        )

    def snapshot(self, realms: Sequence[str], upto: int) -> Iterator[StoredObject]:
        """Every live object of ``realms`` as of revision ``upto``."""
        yield from self._stream(
            select(*_COLUMNS).where(
                objects.c.db_id == self.db_id,
                objects.c.realm_id.in_(realms),
                objects.c.rev <= upto,
                objects.c.deleted.is_(False),
            )
        )

    def departures(
        self, realms: Sequence[str], after: int, upto: int
    ) -> list[tuple[str, str]]:
        """(table, key) of objects that left ``realms`` in revisions (after, upto]."""
        rows = self.connection.execute(
            _DEPARTURES[self._dialect],
            {"db_id": self.db_id, "realms": self._list(list(realms)), "after": after,
             "upto": upto},
        )
        return [(row.tbl, row.key) for row in rows]

    def _stream(  # type: ignore[no-untyped-def]
        self, statement, parameters: dict | None = None
    ) -> Iterator[StoredObject]:
        """The rows of ``statement``: up to ``BATCH`` of them in one round trip,
        more from a server-side cursor, ``BATCH`` at a time (which costs four
        round trips or more: declare, fetch, fetch, close)."""
        first = _FIRST_BATCH.get(statement)
        if first is None:
            first = statement.limit(BATCH + 1)
        few = self.connection.execute(first, parameters).all()
        if len(few) > BATCH:
            in_transaction(self.connection)
        rows = few if len(few) <= BATCH else self.connection.execute(
            statement.execution_options(yield_per=BATCH), parameters
        )
        for row in rows:
            yield StoredObject(*row)

    # --- writing ------------------------------------------------------------

    def put_many(
        self, rows: Sequence[StoredObject], new_only: bool = False
    ) -> list[tuple[str, str]]:
        """Insert or replace ``rows`` (live objects and tombstones alike).

        The last row for a key wins, as one statement may not touch a row twice.
        ``new_only`` (an insert) leaves the keys that hold a live object as they
        are, and returns them as (table, key): the caller refuses the write.
        """
        unique = list({(row.tbl, row.key): row for row in rows}.values())
        if not unique:
            return []
        self.written_realms.update(row.realm_id for row in unique)
        self.written_tables.update(row.tbl for row in unique)
        self._forget_documents([row for row in unique if row.deleted])
        if self._dialect == "postgresql":
            written = self._upsert_columns(unique, new_only)
        else:
            written = self._upsert_rows(unique, new_only)
        if not new_only:
            return []
        pairs = set(written)
        return [(row.tbl, row.key) for row in unique if (row.tbl, row.key) not in pairs]

    def _upsert_columns(self, rows: list[StoredObject], new_only: bool) -> Sequence[Row[Any]]:
        """PostgreSQL: all rows in one statement, as one array per column (``unnest``):
        twice as fast as multi-row ``VALUES`` for a big batch (a replica's copy)."""
        columns = {
            name: _ARRAYS[name]([getattr(row, name) for row in rows]) for name in _PUT_COLUMNS
        }
        statement = _PUT_NEW_UNNESTED if new_only else _PUT_UNNESTED
        result = self.connection.execute(statement, {"db_id": self.db_id, **columns})
        return result.all() if new_only else ()

    def _upsert_rows(self, rows: list[StoredObject], new_only: bool) -> Sequence[Row[Any]]:
        return self.connection.execute(
            _PUT_NEW_ROWS if new_only else _PUT_ROWS,
            [
                {"db_id": self.db_id, **{name: getattr(row, name) for name in _PUT_COLUMNS}}
                for row in rows
            ],
        ).all()

    def _forget_documents(self, tombstones: list[StoredObject]) -> None:
        """A deleted object's Y documents go with it."""
        by_table: dict[str, list[str]] = {}
        for row in tombstones:
            by_table.setdefault(row.tbl, []).append(row.key)
        for tbl, keys in by_table.items():
            ydocs.forget_documents(self.connection, self.db_id, tbl, keys)

    def record_departure(self, tbl: str, key: str, realm_id: str, rev: int) -> None:
        """Object ``key`` left ``realm_id`` at ``rev``; its Y documents follow it."""
        self.written_realms.add(realm_id)
        self.written_tables.add(tbl)
        ydocs.follow_parent(self.connection, self.db_id, tbl, key, rev)
        statement = self._insert(schema.departures).values(
            db_id=self.db_id, tbl=tbl, key=key, realm_id=realm_id, rev=rev
        )
        self.connection.execute(
            statement.on_conflict_do_update(
                index_elements=list(schema.departures.primary_key.columns),
                set_={"rev": statement.excluded.rev},
            )
        )
        # Every time: a savepoint rolled back may have taken an earlier raise along.
        self._raise(schema.revisions.c.departure_rev, rev)
        noted = self.notes.departure_rev
        if noted is not None:
            self.notes = replace(self.notes, departure_rev=max(noted, rev))

    def purge(self) -> None:
        """Delete every row this database has on the shard (a hard delete)."""
        for table in (
            schema.objects,
            schema.departures,
            schema.revisions,
            schema.applied_transactions,
            schema.consistent_operations,
            schema.access_realms,
            schema.access_members,
            schema.blobs,
            schema.blob_chunks,
            schema.blob_refs,
            schema.y_updates,
            schema.source_digests,
        ):
            self.connection.execute(delete(table).where(table.c.db_id == self.db_id))

    # --- applied transactions and consistent operations -------------------

    def claim_applied(
        self, user_id: str, client_identity: str, txids: Collection[str], rev: int
    ) -> set[str]:
        """Record ``txids`` of this user's client as applied at ``rev``; the ones
        recorded now (the others were applied by an earlier request: a resend)."""
        return self.record_applied(
            [AppliedTransaction(user_id, client_identity, txid, rev) for txid in txids]
        )

    def record_applied(self, applied: Collection[AppliedTransaction]) -> set[str]:
        """Record ``applied`` (a replica copies its source's); the txids recorded now."""
        if not applied:
            return set()
        created = utcnow()
        rows = [
            {
                "db_id": self.db_id,
                "user_id": row.user_id,
                "client_identity": row.client_identity,
                "txid": row.txid,
                "rev": row.rev,
                "created": created,
            }
            for row in applied
        ]
        return set(self.connection.scalars(_CLAIM[self._dialect], rows))

    def applied_rows(self, after: int, upto: int) -> Iterator[AppliedTransaction]:
        """The transactions recorded as applied in revisions (after, upto], by revision."""
        columns = (_applied.c.user_id, _applied.c.client_identity, _applied.c.txid, _applied.c.rev)
        for row in self._recorded_between(_applied, columns, after, upto, _applied.c.rev):
            yield AppliedTransaction(*row)

    def _recorded_between(  # type: ignore[no-untyped-def]
        self, table, columns, after: int, upto: int, *order
    ) -> Iterator:
        """``columns`` of ``table``'s rows of this database in revisions (after, upto],
        in ``order``, from a server-side cursor (what a replica copies)."""
        in_transaction(self.connection)
        return iter(self.connection.execute(
            select(*columns)
            .where(table.c.db_id == self.db_id, table.c.rev > after, table.c.rev <= upto)
            .order_by(*order)
            .execution_options(yield_per=BATCH)
        ))

    def unclaim_applied(self, user_id: str, client_identity: str, txids: Collection[str]) -> None:
        """Drop the records of ``txids`` claimed in this transaction but refused."""
        if not txids:
            return
        table = schema.applied_transactions
        refused = sorted(txids)
        for start in range(0, len(refused), BATCH):
            self.connection.execute(
                delete(table).where(
                    table.c.db_id == self.db_id,
                    table.c.user_id == user_id,
                    table.c.client_identity == client_identity,
                    table.c.txid.in_(refused[start : start + BATCH]),
                )
            )

    def record_consistent_operation(
        self, tbl: str, user_id: str, client_identity: str, rev: int, operation: str
    ) -> None:
        self.connection.execute(
            insert(schema.consistent_operations).values(
                db_id=self.db_id,
                tbl=tbl,
                user_id=user_id,
                client_identity=client_identity,
                rev=rev,
                operation=operation,
            )
        )
        self._raise(schema.revisions.c.criteria_rev, rev)

    def consistent_rows(self, after: int, upto: int) -> Iterator[ConsistentOperation]:
        """The where-clause operations recorded in revisions (after, upto], in the
        order they were recorded (a replica copies them)."""
        table = schema.consistent_operations
        columns = (table.c.tbl, table.c.user_id, table.c.client_identity, table.c.rev,
                   table.c.operation)
        for row in self._recorded_between(table, columns, after, upto, table.c.rev, table.c.id):
            yield ConsistentOperation(*row)

    def replace_consistent_operations(self, operations: Sequence[ConsistentOperation]) -> None:
        """Store a source's ``operations`` in their order, in place of those of the same
        revisions here: a replica applying a batch again after a crash (its checkpoint
        not stored) must not record an operation twice, as a replay of an ``add``
        would then add twice."""
        if not operations:
            return
        table = schema.consistent_operations
        revisions = sorted({operation.rev for operation in operations})
        for start in range(0, len(revisions), BATCH):
            self.connection.execute(delete(table).where(
                table.c.db_id == self.db_id, table.c.rev.in_(revisions[start : start + BATCH])
            ))
        self.connection.execute(insert(table), [
            {
                "db_id": self.db_id, "tbl": operation.tbl, "user_id": operation.user_id,
                "client_identity": operation.client_identity, "rev": operation.rev,
                "operation": operation.operation,
            }
            for operation in operations
        ])
        self._raise(schema.revisions.c.criteria_rev, revisions[-1])

    def _raise(self, noted: Column[Any], rev: int) -> None:
        """Note on the counter, in column ``noted``, that something was recorded at
        ``rev`` (a where-clause operation, a departure; one not known stays unknown)."""
        self.connection.execute(
            update(schema.revisions)
            .where(schema.revisions.c.db_id == self.db_id, noted < rev)
            .values({noted.name: rev})
        )

    def consistent_operations_after(
        self, tbl: str, rev: int, user_id: str, client_identity: str
    ) -> list[tuple[str, str]]:
        """(issuer, operation) on ``tbl`` committed after ``rev`` by other clients
        than this user's ``client_identity``, oldest first."""
        table = schema.consistent_operations
        rows = self.connection.execute(
            select(table.c.user_id, table.c.operation)
            .where(
                table.c.db_id == self.db_id,
                table.c.tbl == tbl,
                table.c.rev > rev,
                table.c.user_id.is_not(None),
                ~and_(table.c.user_id == user_id, table.c.client_identity == client_identity),
            )
            .order_by(table.c.rev, table.c.id)
        )
        return [(row.user_id, row.operation) for row in rows]


def _new_stamp() -> int:
    """A new access stamp: random, so that a value never comes back (not after a
    rollback, not after the database moved away and back)."""
    return secrets.randbits(63)


def refresh_statistics(engine: Engine, written: int) -> None:
    """After a bulk write of ``written`` objects (from :data:`BULK_WRITE` on), have
    PostgreSQL sample the objects table again, as autovacuum would only within a minute.
    Until then the planner may take a database's objects for a handful and read them all
    to find a push's keys (docs/operations.md)."""
    if written >= BULK_WRITE and engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text(f"ANALYZE {objects.name}"))
