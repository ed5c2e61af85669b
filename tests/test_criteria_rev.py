"""The revision counter knows the newest revision with a where-clause operation
(``revisions.criteria_rev``), so that a push of a device that is behind reads the
operations to replay only when one came after its base."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, select

from dxc.manage.databases import create_database
from dxc.storage import schema
from dxc.storage.migrate import alembic_config, upgrade
from dxc.storage.objects import ConsistentOperation, ObjectStore
from dxc.storage.shard_copy import copy_revision_counter

OPERATION = '{"type":"delete","criteria":{"index":"n","range":{"type":1,"lower":1}}}'


def test_the_counter_follows_the_where_clause_operations_recorded(app):
    services = app.extensions["dxc"]
    db_id = create_database(services).db_id
    shard = services.router.shard_for(db_id)

    def write(work):
        with shard.transaction() as connection:
            store = ObjectStore(connection, db_id)
            rev = store.next_revision()
            work(store, rev)
            return store.criteria_rev, rev

    assert write(lambda store, rev: None)[0] == 0  # a new database has none
    _, first = write(lambda s, rev: s.record_consistent_operation("items", "ann", "d", rev,
                                                                 OPERATION))
    assert write(lambda store, rev: None)[0] == first
    # a replica's batch, and one of an older revision, which leaves the newest
    _, second = write(lambda s, rev: s.replace_consistent_operations(
        [ConsistentOperation("items", "ann", "d", rev, OPERATION)]))
    write(lambda s, rev: s.replace_consistent_operations(
        [ConsistentOperation("items", "ann", "d", first, OPERATION)]))
    assert write(lambda store, rev: None)[0] == second
    with shard.transaction() as connection:  # not known: stays not known
        connection.execute(schema.revisions.update().where(
            schema.revisions.c.db_id == db_id).values(criteria_rev=None))
    write(lambda s, rev: s.record_consistent_operation("items", "ann", "d", rev, OPERATION))
    assert write(lambda store, rev: None)[0] is None


def test_a_moved_counter_keeps_it(app, tmp_path):
    services = app.extensions["dxc"]
    db_id = create_database(services).db_id
    shard = services.router.shard_for(db_id)
    with shard.transaction() as connection:
        store = ObjectStore(connection, db_id)
        store.record_consistent_operation("items", "ann", "d", store.next_revision(), OPERATION)
    target = create_engine(f"sqlite:///{tmp_path / 'target.sqlite'}")
    upgrade(target, "shard")
    with shard.engine.connect() as source, target.begin() as connection:
        rev = copy_revision_counter(source, connection, db_id)
        moved = connection.execute(select(schema.revisions.c.criteria_rev)).scalar_one()
    target.dispose()
    assert moved == rev


def test_the_migration_fills_it_from_the_operations_stored(database_url):
    engine = create_engine(database_url)
    config = alembic_config("shard")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "shard_0009")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO revisions (db_id, rev) VALUES ('zwith', 9), ('zwithout', 4)"
        )
        connection.exec_driver_sql(
            "INSERT INTO consistent_operations (db_id, rev, tbl, client_identity, user_id,"
            " operation) VALUES ('zwith', 3, 'items', 'd', 'ann', 'x'),"
            " ('zwith', 7, 'items', 'd', 'ann', 'x')"
        )
    upgrade(engine, "shard")
    with engine.connect() as connection:
        filled = dict(connection.execute(
            select(schema.revisions.c.db_id, schema.revisions.c.criteria_rev)
        ).all())
    engine.dispose()
    assert filled == {"zwith": 7, "zwithout": 0}
