"""What a move compares, and when (docs/shards.md, "What a move does").

The last copy pass compares both copies whole while writers go on; the hold
compares only the rows written after that pass (and counts every row), so
that the writers' wait does not grow with the database. Each test spoils the
target's copy at one moment and shows which comparison refuses it, on SQLite
and PostgreSQL default shards alike (hashed in Python, or by PostgreSQL). The
last ones change Y.js documents during a move as the server does (deleted with
their object, moved with it to another realm, compacted) and show that the
move copies them as they are.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, delete, update

from dxc.manage import moves
from dxc.storage import schema
from dxc.storage.objects import ObjectStore, StoredObject
from dxc.storage.ydocs import YDocStore
from tests.shard_databases import shard_database  # noqa: F401
from tests.test_blob_moves import _with_a_second_shard
from tests.test_blobs_http import Db

OBJECTS = 30


def _write(services, db_id: str, keys: range) -> None:
    """Objects written as a push would: at a new revision of the source."""
    with services.router.shard_for(db_id).transaction() as connection:
        store = ObjectStore(connection, db_id)
        rev = store.next_revision()
        store.put_many([StoredObject("items", f"itm{n}", "rlm", None, rev, False, f'{{"n":{n}}}')
                        for n in keys])


def _database(app, shard_database) -> Db:  # noqa: F811
    db = _with_a_second_shard(app, shard_database)
    _write(db.services, db.id, range(OBJECTS))
    return db


def _spoil(connection: Connection, key: str) -> None:
    objects = schema.objects
    spoiled = connection.execute(update(objects).where(objects.c.key == key)
                                 .values(value='{"n":"spoiled"}'))
    assert spoiled.rowcount == 1


def _placed(db: Db) -> str:
    db.services.router.forget(db.id)
    return db.services.router.shard_for(db.id).name


def test_a_row_that_differs_after_the_last_pass_stops_the_move_before_its_hold(
    app, shard_database, monkeypatch  # noqa: F811
):
    db = _database(app, shard_database)
    copy_rows = moves.copy_rows

    def spoiled_copy(source: Connection, target: Connection, *args):  # type: ignore[no-untyped-def]
        copied = copy_rows(source, target, *args)
        _spoil(target, "itm3")
        return copied

    held = []
    monkeypatch.setattr(moves, "copy_rows", spoiled_copy)
    monkeypatch.setattr(moves, "_hold_and_switch", lambda *args: held.append(args))
    with pytest.raises(moves.MoveFailed, match="differs from the source in objects"):
        moves.move_database(db.services, db.id, "local", hold_seconds=10)
    assert not held
    assert _placed(db) != "local"

    monkeypatch.undo()
    moves.move_database(db.services, db.id, "local", hold_seconds=10)  # run again: it finishes
    assert _placed(db) == "local"


@pytest.mark.parametrize("spoiled", ["written in the hold", "gone"])
def test_the_hold_compares_the_rows_written_since_and_counts_them_all(
    app, shard_database, monkeypatch, spoiled  # noqa: F811
):
    """A row written after the last pass is compared in the hold; a row the target lost
    after the last pass shows in the count."""
    db = _database(app, shard_database)
    catch_up, copy_counter = moves._catch_up, moves.copy_revision_counter

    def write_after_the_last_pass(source: Engine, *args):  # type: ignore[no-untyped-def]
        copied = catch_up(source, *args)
        _write(db.services, db.id, range(OBJECTS, OBJECTS + 1))
        return copied

    def spoil_in_the_hold(source: Connection, target: Connection, db_id: str) -> int:
        if spoiled == "gone":
            objects = schema.objects
            target.execute(delete(objects).where(objects.c.key == "itm3"))
        else:
            _spoil(target, f"itm{OBJECTS}")
        return copy_counter(source, target, db_id)

    monkeypatch.setattr(moves, "_catch_up", write_after_the_last_pass)
    monkeypatch.setattr(moves, "copy_revision_counter", spoil_in_the_hold)
    with pytest.raises(moves.MoveFailed, match="differs from the source in objects"):
        moves.move_database(db.services, db.id, "local", hold_seconds=10)
    assert _placed(db) != "local"


def _with_a_document(db: Db, key: str) -> None:
    """A Y.js document on object ``key``, of one update."""
    with db.services.router.shard_for(db.id).transaction() as connection:
        store = ObjectStore(connection, db.id)
        YDocStore(connection, db.id).add("items", "doc", key, store.next_revision(), None, b"u")


@pytest.mark.parametrize("seen_by", ["the hold", "the last pass"])
@pytest.mark.parametrize("change", ["parent deleted", "parent moved", "compacted"])
def test_documents_changed_during_the_copy_move_along(
    app, shard_database, monkeypatch, change, seen_by  # noqa: F811
):
    """Changed after the first pass, which is the last one, or before a second pass."""
    db = _database(app, shard_database)
    if seen_by == "the last pass":
        monkeypatch.setattr(moves, "SMALL_PASS_ROWS", 1)  # the first pass copies more
    for key in ("itm1", "itm2"):
        _with_a_document(db, key)
        _with_a_document(db, key)
    copy_rows, changed = moves.copy_rows, []

    def change_after_the_first_pass(source: Connection, *args):  # type: ignore[no-untyped-def]
        copied = copy_rows(source, *args)
        if not changed:
            changed.append(change)
            _change_document(db, change)
        return copied

    monkeypatch.setattr(moves, "copy_rows", change_after_the_first_pass)
    moves.move_database(db.services, db.id, "local", hold_seconds=10)
    assert _placed(db) == "local"
    with db.services.router.shard_for(db.id).transaction(read_only=True) as connection:
        documents = YDocStore(connection, db.id)
        updates = {key: [update.data for update in documents.oldest("items", "doc", key, 10)]
                   for key in ("itm1", "itm2")}
    assert updates["itm2"] == [b"u", b"u"]
    assert updates["itm1"] == {"parent deleted": [], "parent moved": [b"u", b"u"],
                               "compacted": [b"merged"]}[change]


def _change_document(db: Db, change: str) -> None:
    with db.services.router.shard_for(db.id).transaction() as connection:
        store, documents = ObjectStore(connection, db.id), YDocStore(connection, db.id)
        if change == "compacted":
            assert documents.replace(documents.oldest("items", "doc", "itm1", 10), b"merged")
            return
        rev = store.next_revision()
        if change == "parent moved":
            store.record_departure("items", "itm1", "rlm", rev)
        deleted = change == "parent deleted"
        store.put_many([StoredObject("items", "itm1", "rlm" if deleted else "rlm2", None, rev,
                                     deleted, None if deleted else '{"n":1}')])
