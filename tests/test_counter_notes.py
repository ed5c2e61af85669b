"""What the revision counter notes for readers (``CounterNotes``): the access stamp,
renewed by every change of the access index, and the newest revision with a
departure. A reader that trusts a note skips a statement, so each must move with
every write it stands for, savepoints, moves and the migration included."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, select

from dxc.access.index import store_objects
from dxc.manage.databases import create_database
from dxc.storage import schema
from dxc.storage.migrate import alembic_config, upgrade
from dxc.storage.objects import CounterNotes, ObjectStore, StoredObject
from dxc.storage.shard_copy import copy_revision_counter


def realm_row(key: str, rev: int) -> StoredObject:
    return StoredObject("realms", key, key, "ann", rev, False, '{"realmId":"%s"}' % key)


def item_row(key: str, rev: int) -> StoredObject:
    return StoredObject("items", key, "ann", "ann", rev, False, "{}")


def test_the_notes_follow_the_writes(app):
    services = app.extensions["dxc"]
    db_id = create_database(services).db_id
    shard = services.router.shard_for(db_id)

    def write(work) -> tuple[CounterNotes, CounterNotes, int]:
        """The notes read with a new revision, after ``work``, and the revision."""
        with shard.transaction() as connection:
            store = ObjectStore(connection, db_id)
            rev = store.next_revision()
            read = store.notes
            work(store, rev)
            return read, store.notes, rev

    new, _, _ = write(lambda store, rev: None)
    assert new.departure_rev == 0 and new.access_stamp is not None
    # data rows leave the stamp; an access row renews it, and the writer trusts none
    read, after, _ = write(lambda store, rev: store_objects(store, [item_row("i1", rev)]))
    assert read == new and after == new
    read, after, _ = write(lambda store, rev: store_objects(store, [realm_row("r1", rev)]))
    assert after.access_stamp is None
    renewed, _, _ = write(lambda store, rev: None)
    assert renewed.access_stamp not in (None, new.access_stamp)

    _, after, moved = write(lambda store, rev: store.record_departure("items", "i1", "ann", rev))
    assert after.departure_rev == moved
    assert write(lambda store, rev: None)[0].departure_rev == moved
    # an older one (a replica's) leaves the newest
    write(lambda store, rev: store.record_departure("items", "i2", "ann", moved - 1))
    assert write(lambda store, rev: None)[0].departure_rev == moved


def test_a_savepoint_rolled_back_takes_its_note_along_not_the_next_one(app):
    services = app.extensions["dxc"]
    db_id = create_database(services).db_id
    shard = services.router.shard_for(db_id)
    with shard.transaction() as connection:
        store = ObjectStore(connection, db_id)
        before = store.next_revision()
    with shard.transaction() as connection:
        store = ObjectStore(connection, db_id)
        rev = store.next_revision()
        stamp = store.notes.access_stamp
        savepoint = connection.begin_nested()
        store.record_departure("items", "i1", "ann", rev)
        store_objects(store, [realm_row("r1", rev)])
        savepoint.rollback()
        store.record_departure("items", "i2", "ann", rev)
    with shard.transaction() as connection:
        store = ObjectStore(connection, db_id)
        assert store.current_revision() == rev > before
        assert store.notes == CounterNotes(stamp, rev)


def test_a_moved_counter_keeps_its_notes(app, tmp_path):
    services = app.extensions["dxc"]
    db_id = create_database(services).db_id
    shard = services.router.shard_for(db_id)
    with shard.transaction() as connection:
        store = ObjectStore(connection, db_id)
        rev = store.next_revision()
        store.record_departure("items", "i1", "ann", rev)
        store_objects(store, [realm_row("r1", rev)])
    with shard.reads() as connection:
        store = ObjectStore(connection, db_id)
        store.current_revision()
        notes = store.notes
    target = create_engine(f"sqlite:///{tmp_path / 'target.sqlite'}")
    upgrade(target, "shard")
    with shard.engine.connect() as source, target.begin() as connection:
        copy_revision_counter(source, connection, db_id)
        moved = ObjectStore(connection, db_id)
        moved.current_revision()
    target.dispose()
    assert moved.notes == notes and notes.departure_rev == rev


def test_the_migration_fills_them(database_url):
    engine = create_engine(database_url)
    config = alembic_config("shard")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "shard_0011")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO revisions (db_id, rev) VALUES ('zwith', 9), ('zwithout', 4)"
        )
        connection.exec_driver_sql(
            "INSERT INTO departures (db_id, tbl, key, realm_id, rev) VALUES"
            " ('zwith', 'items', 'a', 'r', 3), ('zwith', 'items', 'b', 'r', 7)"
        )
    upgrade(engine, "shard")
    revisions = schema.revisions
    with engine.connect() as connection:
        rows = connection.execute(
            select(revisions.c.db_id, revisions.c.departure_rev, revisions.c.access_stamp)
        ).all()
    engine.dispose()
    assert {row.db_id: row.departure_rev for row in rows} == {"zwith": 7, "zwithout": 0}
    stamps = [row.access_stamp for row in rows]
    assert None not in stamps and len(set(stamps)) == 2
