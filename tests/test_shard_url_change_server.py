"""``update-shard NAME --url`` on a running server (gunicorn, two gevent workers): the
workers move to the new connection string without a restart.

The shard's data is copied to a second PostgreSQL database, the shard's URL is changed to
it and the first database is dropped: a worker still on the old URL could only fail. Once
the router's check interval has passed, every push succeeds and lands in the new
database, and no worker was restarted.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select

from dxc.manage import shards as shard_tasks
from dxc.manage.importer import import_document
from dxc.storage import router, schema
from dxc.storage.engines import make_engine
from dxc.storage.migrate import upgrade
from dxc.storage.shard_copy import copy_revision_counter, copy_rows
from tests.protocol_client import ALICE, Device, item
from tests.shard_databases import *  # noqa: F403 (the fixtures)
from tests.shard_databases import drop_database
from tests.test_replication_server import HttpClient

PUSHES = 12


def copy_database(db_id: str, source_url: str, target_url: str) -> None:
    source, target = make_engine(source_url), make_engine(target_url)
    try:
        upgrade(target, "shard")
        with source.connect() as reading, target.begin() as writing:
            copy_rows(reading, writing, db_id, None)
            copy_revision_counter(reading, writing, db_id)
    finally:
        source.dispose()
        target.dispose()


def objects_in(url: str, db_id: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(
                select(func.count()).select_from(schema.objects)
                .where(schema.objects.c.db_id == db_id)
            )
    finally:
        engine.dispose()


def test_running_workers_follow_a_changed_shard_url(server, shard_database):
    services = server.services
    first, second = shard_database(), shard_database()
    shard_tasks.add_shard(services, "main", first, weight=1)
    shard_tasks.update_shard(services, "default", weight=0)
    db_url = server.create_database()
    db_id = db_url.rsplit("/", 1)[1]
    import_document(services, db_id, {"demoUsers": {ALICE: {}}})
    writer = Device(HttpClient(server.url), db_url, "writer")
    writer.login(ALICE)
    writer.sync([writer.op("items", "insert", ["itm-0"], "tx-0", values=[item("itm-0")])])
    assert objects_in(first, db_id) > 0

    copy_database(db_id, first, second)
    shard_tasks.update_shard(services, "main", second)
    drop_database(first)

    # Within SHARD_CHECK_SECONDS every worker compares versions at its next use of the
    # shard: from then on no worker may touch the dropped database. Each request opens
    # a new connection, so both workers serve some of them.
    time.sleep(router.SHARD_CHECK_SECONDS + 0.5)
    for n in range(1, PUSHES):
        key = f"itm-{n}"
        writer.sync([writer.op("items", "insert", [key], f"tx-{n}", values=[item(key)])])

    reader = Device(HttpClient(server.url), db_url, "reader")
    reader.login(ALICE)
    reader.sync()
    assert sorted(reader.state["items"]) == sorted(f"itm-{n}" for n in range(PUSHES))
    assert objects_in(second, db_id) >= PUSHES
    assert server.process.poll() is None
    assert server.log().count("Booting worker") == 2, "a worker was restarted"
