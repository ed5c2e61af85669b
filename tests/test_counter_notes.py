"""What the revision counter notes for readers: the newest revision with a
where-clause operation (``criteria_rev``), and ``CounterNotes``: the access stamp,
renewed by every change of the access index, and the newest revision with a
departure. A reader that trusts a note skips a statement, so each must move with
every write it stands for, savepoints, moves and the migration included."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic import command
from sqlalchemy import Engine, create_engine, select

from dxc.access.index import store_objects
from dxc.manage.databases import create_database
from dxc.storage import schema
from dxc.storage.migrate import alembic_config, upgrade
from dxc.storage.objects import ConsistentOperation, CounterNotes, ObjectStore, StoredObject
from dxc.storage.shard_copy import copy_revision_counter

OPERATION = '{"type":"delete","criteria":{"index":"n","range":{"type":1,"lower":1}}}'


def realm_row(key: str, rev: int) -> StoredObject:
    return StoredObject("realms", key, key, "ann", rev, False, '{"realmId":"%s"}' % key)


def item_row(key: str, rev: int) -> StoredObject:
    return StoredObject("items", key, "ann", "ann", rev, False, "{}")


def writer(app) -> tuple[str, Callable[[Callable[[ObjectStore, int], Any]], tuple]]:
    """A new database, and a function that runs ``work(store, rev)`` in one transaction
    at a new revision: the notes read with it, those after ``work``, the criteria
    revision read with it, and the revision."""
    services = app.extensions["dxc"]
    db_id = create_database(services).db_id
    shard = services.router.shard_for(db_id)

    def write(work: Callable[[ObjectStore, int], Any]) -> tuple:
        with shard.transaction() as connection:
            store = ObjectStore(connection, db_id)
            rev = store.next_revision()
            read, criteria_rev = store.notes, store.criteria_rev
            work(store, rev)
            return read, store.notes, criteria_rev, rev

    return db_id, write


def nothing(store: ObjectStore, rev: int) -> None:
    pass


def test_the_criteria_revision_follows_the_where_clause_operations_recorded(app):
    db_id, write = writer(app)
    assert write(nothing)[2] == 0  # a new database has none
    *_, first = write(lambda s, rev: s.record_consistent_operation("items", "ann", "d", rev,
                                                                   OPERATION))
    assert write(nothing)[2] == first
    # a replica's batch, and one of an older revision, which leaves the newest
    *_, second = write(lambda s, rev: s.replace_consistent_operations(
        [ConsistentOperation("items", "ann", "d", rev, OPERATION)]))
    write(lambda s, rev: s.replace_consistent_operations(
        [ConsistentOperation("items", "ann", "d", first, OPERATION)]))
    assert write(nothing)[2] == second
    # not known: stays not known
    write(lambda s, rev: s.connection.execute(schema.revisions.update().where(
        schema.revisions.c.db_id == db_id).values(criteria_rev=None)))
    write(lambda s, rev: s.record_consistent_operation("items", "ann", "d", rev, OPERATION))
    assert write(nothing)[2] is None


def test_the_notes_follow_the_writes(app):
    _, write = writer(app)
    new = write(nothing)[0]
    assert new.departure_rev == 0 and new.access_stamp is not None
    # data rows leave the stamp; an access row renews it, and the writer trusts none
    read, after, *_ = write(lambda store, rev: store_objects(store, [item_row("i1", rev)]))
    assert read == new and after == new
    _, after, *_ = write(lambda store, rev: store_objects(store, [realm_row("r1", rev)]))
    assert after.access_stamp is None
    assert write(nothing)[0].access_stamp not in (None, new.access_stamp)

    _, after, _, moved = write(lambda s, rev: s.record_departure("items", "i1", "ann", rev))
    assert after.departure_rev == moved
    assert write(nothing)[0].departure_rev == moved
    # an older one (a replica's) leaves the newest
    write(lambda store, rev: store.record_departure("items", "i2", "ann", moved - 1))
    assert write(nothing)[0].departure_rev == moved


def test_a_savepoint_rolled_back_takes_its_note_along_not_the_next_one(app):
    _, write = writer(app)
    stamp = write(nothing)[0].access_stamp

    def roll_back_then_depart(store: ObjectStore, rev: int) -> None:
        savepoint = store.connection.begin_nested()
        store.record_departure("items", "i1", "ann", rev)
        store_objects(store, [realm_row("r1", rev)])
        savepoint.rollback()
        store.record_departure("items", "i2", "ann", rev)

    *_, rev = write(roll_back_then_depart)
    assert write(nothing)[0] == CounterNotes(stamp, rev)


def test_a_moved_counter_keeps_what_it_notes(app, tmp_path):
    db_id, write = writer(app)

    def note_everything(store: ObjectStore, rev: int) -> None:
        store.record_consistent_operation("items", "ann", "d", rev, OPERATION)
        store.record_departure("items", "i1", "ann", rev)
        store_objects(store, [realm_row("r1", rev)])

    *_, rev = write(note_everything)
    notes = write(nothing)[0]
    target = create_engine(f"sqlite:///{tmp_path / 'target.sqlite'}")
    upgrade(target, "shard")
    shard = app.extensions["dxc"].router.shard_for(db_id)
    with shard.engine.connect() as source, target.begin() as connection:
        copy_revision_counter(source, connection, db_id)
        moved = ObjectStore(connection, db_id)
        moved.current_revision()
        criteria_rev = connection.scalar(select(schema.revisions.c.criteria_rev))
    target.dispose()
    assert moved.notes == notes and notes.departure_rev == rev and criteria_rev == rev


def migrated(database_url: str, before: str, *rows: str) -> Engine:
    """The shard schema at revision ``before``, ``rows`` inserted (SQL), then upgraded."""
    engine = create_engine(database_url)
    config = alembic_config("shard")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, before)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO revisions (db_id, rev) VALUES ('zwith', 9), ('zwithout', 4)"
        )
        for statement in rows:
            connection.exec_driver_sql(statement)
    upgrade(engine, "shard")
    return engine


def test_the_migration_fills_the_criteria_revision(blank_database_url):
    engine = migrated(
        blank_database_url,
        "shard_0009",
        "INSERT INTO consistent_operations (db_id, rev, tbl, client_identity, user_id,"
        " operation) VALUES ('zwith', 3, 'items', 'd', 'ann', 'x'),"
        " ('zwith', 7, 'items', 'd', 'ann', 'x')",
    )
    with engine.connect() as connection:
        filled = dict(connection.execute(
            select(schema.revisions.c.db_id, schema.revisions.c.criteria_rev)
        ).all())
    engine.dispose()
    assert filled == {"zwith": 7, "zwithout": 0}


def test_the_migration_fills_the_notes(blank_database_url):
    engine = migrated(
        blank_database_url,
        "shard_0011",
        "INSERT INTO departures (db_id, tbl, key, realm_id, rev) VALUES"
        " ('zwith', 'items', 'a', 'r', 3), ('zwith', 'items', 'b', 'r', 7)",
    )
    revisions = schema.revisions
    with engine.connect() as connection:
        rows = connection.execute(
            select(revisions.c.db_id, revisions.c.departure_rev, revisions.c.access_stamp)
        ).all()
    engine.dispose()
    assert {row.db_id: row.departure_rev for row in rows} == {"zwith": 7, "zwithout": 0}
    stamps = [row.access_stamp for row in rows]
    assert None not in stamps and len(set(stamps)) == 2
