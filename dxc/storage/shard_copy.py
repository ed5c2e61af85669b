"""Copying one logical database's rows from one shard to another, and comparing them.

Every table of the shard schema with a ``db_id`` column belongs to the copy,
so tables that later migrations add come along without changes here. A
table with a ``rev`` column is copied incrementally: the rows with a
revision above the last pass (a changed row gets a new revision, and rows
are never deleted while the database lives, only tombstoned), upserted by
their primary key. Y.js updates have a revision but a surrogate key, and are
deleted with their object or merged by a compaction: they are copied by
document, each pass those of the objects changed since (:func:`mend_documents`
copies those a compaction changed). Blobs have no revision but never change
(an id's bytes are written once; a blob is only added or removed whole): a pass
copies the blobs the target lacks, with their chunks, and deletes those the
source no longer has, so a blob's bytes are copied once and not again in every
pass and in the hold. Any other table without ``rev`` is copied whole each time (the
access index, ``blob_refs``: small rows). The ``revisions`` row is copied
last, with the final pass: a shard holds a database once it has its revision
counter (see ``ObjectStore.next_revision``).

A surrogate key (an autoincrementing ``id``) is not copied: the target numbers
the rows itself, in the source's order, and comparisons leave it out.

The bytes of blobs are compared blob by blob (:func:`blob_digests`), apart from
the other rows (:func:`check` sees the chunks' keys only): as they never change,
a move compares them before it holds the writes, and in the hold only the blobs
uploaded since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Column, Connection, LargeBinary, Select, Table, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from dxc.storage import schema

#: Rows per round trip, both reading and writing.
BATCH = 1000
CHUNK_BATCH = 16
_HASH_MODULUS = 2**128
#: The tables of blobs, each row belonging to one blob that never changes (the
#: record first: rows are copied in this order).
BY_BLOB = (schema.blobs, schema.blob_chunks)
#: A blob as a copy holds it: its id and its upload time (normalised); an id freed by
#: a removal may be uploaded again, with other bytes.
Upload = tuple[str, str]
#: A chunk's part of its blob's hash in PostgreSQL: 64 bits of the MD5 of its number
#: and its bytes' MD5.
_CHUNK_HASH = text(
    "('x' || left(md5(concat(blob_chunks.seq, ':', md5(blob_chunks.data))), 16))::bit(64)::bigint"
)
T = TypeVar("T")


@dataclass(frozen=True)
class TableCheck:
    """A table's rows of one database: how many, and a hash of their contents."""

    rows: int
    digest: str


def database_tables() -> list[Table]:
    """The shard tables that hold rows of a database, the revision counter last."""
    tables = [
        table
        for table in schema.shard_metadata.sorted_tables
        if "db_id" in table.c and table is not schema.revisions
    ]
    return [*tables, schema.revisions]


def copy_rows(source: Connection, target: Connection, db_id: str, since: int | None) -> int:
    """Copy ``db_id``'s rows changed after revision ``since`` (None: all of them)
    from ``source`` to ``target``, the revision counter excepted; how many rows."""
    copied = _copy_blobs(source, target, db_id)
    for table in database_tables()[:-1]:
        if table in BY_BLOB:
            continue
        if table is schema.y_updates and since is not None:
            copied += _copy_documents(source, target, db_id, since)
            continue
        if "rev" not in table.c:
            target.execute(delete(table).where(table.c.db_id == db_id))
            copied += _copy(source, target, table, db_id, None, upsert=False)
        else:
            copied += _copy(source, target, table, db_id, since, upsert=_natural_key(table))
    return copied


def _copy_blobs(source: Connection, target: Connection, db_id: str) -> int:
    """Make the target's blobs those of the source: copy what it lacks, delete what
    the source no longer has; a blob is known by its id and upload time (an id
    freed by a removal may be uploaded again, with other bytes)."""
    theirs, ours = dict(blob_uploads(source, db_id)), dict(blob_uploads(target, db_id))
    gone = sorted(blob for blob, created in ours.items() if theirs.get(blob) != created)
    new = sorted(blob for blob, created in theirs.items() if ours.get(blob) != created)
    for some in _slices(gone):
        for table in BY_BLOB:
            target.execute(delete(table).where(table.c.db_id == db_id,
                                               table.c.blob_id.in_(some)))
    copied = 0
    for some in _slices(new):
        for table in BY_BLOB:
            copied += _copy(source, target, table, db_id, None, upsert=False,
                            where=table.c.blob_id.in_(some))
    return copied


def _copy_documents(source: Connection, target: Connection, db_id: str, since: int) -> int:
    """Copy again the Y.js documents of the objects that have an update or were deleted
    after revision ``since``: an object's documents are deleted with it, and follow it
    to another realm at a new revision (their updates' revisions change), so copying
    their new updates alone would keep what went and copy twice what moved."""
    table, objects = schema.y_updates, schema.objects
    parents = source.execute(
        select(table.c.tbl, table.c.doc_key).where(table.c.db_id == db_id, table.c.rev > since)
        .union(select(objects.c.tbl, objects.c.key).where(
            objects.c.db_id == db_id, objects.c.rev > since, objects.c.deleted))
    ).all()
    return _copy_documents_of(source, target, db_id, parents)


def _copy_documents_of(
    source: Connection, target: Connection, db_id: str, parents: Collection[tuple[str, str]]
) -> int:
    """Replace the target's Y.js updates of objects ``parents`` (table, key) by the source's."""
    table = schema.y_updates
    by_table: dict[str, list[str]] = {}
    for tbl, key in parents:
        by_table.setdefault(tbl, []).append(key)
    copied = 0
    for tbl, keys in sorted(by_table.items()):
        for some in _slices(sorted(keys)):
            of_them = (table.c.tbl == tbl) & table.c.doc_key.in_(some)
            target.execute(delete(table).where(table.c.db_id == db_id, of_them))
            copied += _copy(source, target, table, db_id, None, upsert=False, where=of_them)
    return copied


def blob_uploads(connection: Connection, db_id: str) -> set[Upload]:
    """The blobs ``db_id`` has on this shard."""
    table = schema.blobs
    rows = connection.execute(
        select(table.c.blob_id, table.c.created).where(table.c.db_id == db_id)
    )
    return {(row.blob_id, _normal(row.created)) for row in rows}


def _slices(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start:start + BATCH]


def copy_revision_counter(source: Connection, target: Connection, db_id: str) -> int:
    """Give ``target`` the database's revision counter, at the source's revision (and
    frozen if the database is moving to another installation), with all it notes."""
    table = schema.revisions
    row = source.execute(select(table).where(table.c.db_id == db_id)).first()
    if row is None:
        raise LookupError(f"the source shard has no revision counter of {db_id}")
    target.execute(delete(table).where(table.c.db_id == db_id))
    target.execute(table.insert().values(**row._mapping))
    return row.rev


def head_revision(connection: Connection, db_id: str) -> int | None:
    table = schema.revisions
    return connection.scalar(select(table.c.rev).where(table.c.db_id == db_id))


def check(
    connection: Connection, db_id: str, in_database: bool = False,
    changed_after: int | None = None,
) -> dict[str, TableCheck]:
    """Row count and content hash of each table's rows of ``db_id``, blob chunks by
    their keys (their bytes: :func:`blob_digests`). With ``changed_after``, the tables
    :func:`changed_by_revision` hash only their rows of a later revision (and count
    them all): what is left to compare of copies found alike at that revision.

    The hash is a sum of per-row hashes, so it does not depend on the order in
    which a database returns rows. Computed here (``in_database`` False), the
    same rows give the same hash on SQLite and PostgreSQL (values are
    normalised first); computed by PostgreSQL (:func:`hashed_in_database`), no
    row leaves the server, which keeps a move's hold short, and only another
    such hash is comparable with it."""
    if in_database:
        _same_text_output(connection)
    check_table = _database_check if in_database else _python_check
    return {
        table.name: check_table(
            connection, table, db_id, changed_after if changed_by_revision(table) else None
        )
        for table in database_tables()
    }


def changed_by_revision(table: Table) -> bool:
    """Whether the table's rows of revision R or less stay as they were once R is
    past, but for those written again at a later revision: every table with
    revisions (objects are tombstoned, not deleted) but the counter. Y.js updates
    are also deleted with their object, at its new revision, and merged by a
    compaction, which deletes all but one of them: the row count shows it (see
    :func:`mend_documents`)."""
    return "rev" in table.c and table is not schema.revisions


def blob_digests(
    connection: Connection, db_id: str, in_database: bool = False,
    only: Collection[str] | None = None,
) -> dict[Upload, str]:
    """A hash of each blob's bytes (its chunks, in order), by its upload; of the blobs
    ``only`` names if given. Computed here or by PostgreSQL, as :func:`check`."""
    blobs, chunks = schema.blobs, schema.blob_chunks
    query = select(blobs.c.blob_id, blobs.c.created).select_from(blobs.outerjoin(
        chunks, (chunks.c.db_id == blobs.c.db_id) & (chunks.c.blob_id == blobs.c.blob_id)
    )).where(blobs.c.db_id == db_id)
    if only is None:
        return _blob_digests(connection, query, in_database)
    digests: dict[Upload, str] = {}
    for some in _slices(sorted(only)):
        digests |= _blob_digests(connection, query.where(blobs.c.blob_id.in_(some)), in_database)
    return digests


def _blob_digests(connection: Connection, query: Select, in_database: bool) -> dict[Upload, str]:
    blobs, chunks = schema.blobs, schema.blob_chunks
    if in_database:
        rows = connection.execute(
            query.add_columns(func.count(chunks.c.seq), func.coalesce(func.sum(_CHUNK_HASH), 0))
            .group_by(blobs.c.blob_id, blobs.c.created)
        )
        return {(blob_id, _normal(created)): _digest(count, total)
                for blob_id, created, count, total in rows}
    totals: dict[Upload, list[int]] = {}
    for row in connection.execute(
        query.add_columns(chunks.c.seq, chunks.c.data).execution_options(yield_per=CHUNK_BATCH)
    ):
        total = totals.setdefault((row.blob_id, _normal(row.created)), [0, 0])
        if row.seq is not None:
            total[0] += 1
            total[1] = _plus_hash(total[1], f"{row.seq}:".encode() + bytes(row.data))
    return {upload: _digest(count, total) for upload, (count, total) in totals.items()}


def check_copies(
    source: Connection, target: Connection, db_id: str, changed_after: int | None = None
) -> tuple[dict[str, TableCheck], dict[str, TableCheck]]:
    """:func:`check` of both copies of ``db_id``, comparable with each other."""
    return _on_both(source, target, lambda connection, in_database:
                   check(connection, db_id, in_database, changed_after))


def blob_digests_of_copies(
    source: Connection, target: Connection, db_id: str, only: Collection[str] | None = None
) -> tuple[dict[Upload, str], dict[Upload, str]]:
    """:func:`blob_digests` of both copies of ``db_id``, comparable with each other."""
    return _on_both(source, target, lambda connection, in_database:
                   blob_digests(connection, db_id, in_database, only))


def _on_both(
    source: Connection, target: Connection, read: Callable[[Connection, bool], T]
) -> tuple[T, T]:
    """``read(connection, in_database)`` of both copies: hashed by PostgreSQL, both at
    once, when both shards are PostgreSQL; else hashed here."""
    if not hashed_in_database(source, target):
        return read(source, False), read(target, False)
    with ThreadPoolExecutor(max_workers=1) as other:
        theirs = other.submit(read, source, True)
        ours = read(target, True)
        return theirs.result(), ours


def hashed_in_database(*connections: Connection) -> bool:
    """Whether copies read over ``connections`` are compared by PostgreSQL's hashes."""
    return all(connection.dialect.name == "postgresql" for connection in connections)


def _python_check(
    connection: Connection, table: Table, db_id: str, changed_after: int | None
) -> TableCheck:
    query = select(*_compared_columns(table)).where(table.c.db_id == db_id)
    count = None
    if changed_after is not None:
        count = connection.scalar(select(func.count()).select_from(table)
                                  .where(table.c.db_id == db_id))
        query = query.where(table.c.rev > changed_after)
    hashed, total = 0, 0
    for row in connection.execute(query.execution_options(yield_per=BATCH)):
        hashed += 1
        total = _plus_hash(total, _row_text(row))
    return TableCheck(hashed if count is None else count, f"{total:032x}")


def _row_text(row: Any) -> bytes:
    """A row as the Python hashes read it: alike from SQLite and PostgreSQL."""
    return json.dumps([_normal(value) for value in row], ensure_ascii=False).encode()


def _digest(count: int, total: int) -> str:
    """A group's digest (a blob's chunks, an object's Y.js updates): rows and hash sum."""
    return f"{count}:{int(total) % _HASH_MODULUS:032x}"


def _plus_hash(total: int, data: bytes) -> int:
    """``total`` plus 128 bits of ``data``'s SHA-256: a hash of a set, in any order."""
    digest = hashlib.sha256(data).digest()
    return (total + int.from_bytes(digest[:16], "big")) % _HASH_MODULUS


def _database_check(
    connection: Connection, table: Table, db_id: str, changed_after: int | None
) -> TableCheck:
    """The row count and a sum of the rows' MD5s (64 bits each) as text, by PostgreSQL."""
    rows = f"FROM {connection.dialect.identifier_preparer.quote(table.name)} WHERE db_id = :db_id"
    hashed = rows if changed_after is None else f"{rows} AND rev > :after"
    count, total = connection.execute(
        text(f"SELECT (SELECT count(*) {rows}), "
             f"(SELECT coalesce(sum({_row_hash(connection, table)}), 0) {hashed})"),
        {"db_id": db_id, "after": changed_after},
    ).one()
    return TableCheck(count, f"{int(total) % _HASH_MODULUS:032x}")


def _row_hash(connection: Connection, table: Table) -> str:
    """SQL for 64 bits of the MD5 of a row's text (a ``bytea`` value by its own MD5:
    hashing its bytes costs half its hex text)."""
    quote = connection.dialect.identifier_preparer.quote
    row = ", ".join(
        f"md5({quote(column.name)})" if isinstance(column.type, LargeBinary)
        else quote(column.name)
        for column in _compared_columns(table)
    )
    return f"('x' || left(md5(ROW({row})::text), 16))::bit(64)::bigint"


def document_digests(
    connection: Connection, db_id: str, in_database: bool = False
) -> dict[tuple[str, str], str]:
    """A hash of the Y.js updates of each object that has some, by (table, key); computed
    here or by PostgreSQL, as :func:`check`."""
    table = schema.y_updates
    if in_database:
        _same_text_output(connection)
        rows = connection.execute(
            text(f"SELECT tbl, doc_key, count(*), sum({_row_hash(connection, table)}) "
                 "FROM y_updates WHERE db_id = :db_id GROUP BY tbl, doc_key"),
            {"db_id": db_id},
        )
        return {(tbl, key): _digest(count, total)
                for tbl, key, count, total in rows}
    totals: dict[tuple[str, str], list[int]] = {}
    for row in connection.execute(
        select(*_compared_columns(table)).where(table.c.db_id == db_id)
        .execution_options(yield_per=BATCH)
    ):
        total = totals.setdefault((row.tbl, row.doc_key), [0, 0])
        total[0] += 1
        total[1] = _plus_hash(total[1], _row_text(row))
    return {parent: _digest(count, total) for parent, (count, total) in totals.items()}


def mend_documents(source: Connection, target: Connection, db_id: str) -> int:
    """Copy again the Y.js documents whose updates differ between the copies (a
    compaction merged them in the source, at no new revision); how many objects'."""
    theirs, ours = _on_both(source, target, lambda connection, in_database:
                            document_digests(connection, db_id, in_database))
    differ = {parent for parent in theirs.keys() | ours.keys()
              if theirs.get(parent) != ours.get(parent)}
    _copy_documents_of(source, target, db_id, differ)
    return len(differ)


def _same_text_output(connection: Connection) -> None:
    """Make values print alike on any server, whatever its settings, for this transaction."""
    for setting, value in (("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"),
                           ("bytea_output", "hex"), ("extra_float_digits", "3")):
        connection.execute(text(f"SET LOCAL {setting} = '{value}'"))


def count_rows(connection: Connection, db_id: str) -> int:
    """How many rows ``db_id`` has on this shard, all tables together."""
    return sum(
        connection.scalar(select(func.count()).select_from(t).where(t.c.db_id == db_id)) or 0
        for t in database_tables()
    )


def remove_rows(connection: Connection, db_id: str, with_counter: bool = True) -> None:
    """Delete ``db_id``'s rows from this shard (the counter first: from then on
    the shard does not hold the database)."""
    tables = database_tables()
    for table in reversed(tables if with_counter else tables[:-1]):
        connection.execute(delete(table).where(table.c.db_id == db_id))


def _copy(
    source: Connection,
    target: Connection,
    table: Table,
    db_id: str,
    since: int | None,
    upsert: bool,
    where: Any = None,
) -> int:
    columns = _copied_columns(table)
    query = select(*columns).where(table.c.db_id == db_id)
    if where is not None:
        query = query.where(where)
    if since is not None:
        query = query.where(table.c.rev > since)
    surrogate = _surrogate(table)
    if surrogate is not None:
        query = query.order_by(table.c.rev, surrogate)
    copied = 0
    size = _batch_rows(table)
    for batch in _batches(source.execute(query.execution_options(yield_per=size)), size):
        target.execute(_insert(target, table, columns, upsert), batch).close()
        copied += len(batch)
    return copied


def _batch_rows(table: Table) -> int:
    """Rows per round trip: fewer of the blob chunks (256 KiB each), so that a batch
    in memory stays a few MB."""
    return CHUNK_BATCH if table is schema.blob_chunks else BATCH


def _batches(rows: Any, size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(dict(row._mapping))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(target: Connection, table: Table, columns: list[Column[Any]], upsert: bool) -> Any:
    """An insert (an upsert by primary key if ``upsert``); its ``RETURNING`` makes
    SQLAlchemy send many rows per round trip (see ``ObjectStore.put_many``)."""
    dialect = postgresql if target.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    keys = list(table.primary_key.columns)
    if upsert:
        others = [c for c in columns if c.name not in {k.name for k in keys}]
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={c.name: statement.excluded[c.name] for c in others}
        ) if others else statement.on_conflict_do_nothing(index_elements=keys)
    return statement.returning(keys[0])


def _surrogate(table: Table) -> Column[Any] | None:
    """The table's autoincrementing id, if its primary key is one."""
    keys = list(table.primary_key.columns)
    if len(keys) == 1 and keys[0].autoincrement in (True, "auto") and keys[0].name == "id":
        return keys[0]
    return None


def _natural_key(table: Table) -> bool:
    return _surrogate(table) is None


def _compared_columns(table: Table) -> list[Column[Any]]:
    """What :func:`check` hashes: the copied columns, blob chunks' bytes excepted."""
    return [c for c in _copied_columns(table) if c is not schema.blob_chunks.c.data]


def _copied_columns(table: Table) -> list[Column[Any]]:
    surrogate = _surrogate(table)
    return [column for column in table.c if column is not surrogate]


def _normal(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):  # blob chunks: SQLite bytes, PostgreSQL memoryview
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat()
    return value
