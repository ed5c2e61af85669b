"""Shards behind PgBouncer in transaction pooling mode (docs/shards.md, connection budget).

The real server (gunicorn, two gevent workers) reaches both its control database and a
shard through a private PgBouncer with ``pool_mode = transaction``; the bus is Redis.
A client syncs, pushes, and a socket receives another device's push live: nothing of
the server depends on session state (prepared statements, SET, session locks). With the
PostgreSQL bus instead, LISTEN cannot work through that pooler: the server refuses to
start and says why.
"""

from __future__ import annotations

import pytest
import redis
from sqlalchemy.engine import make_url

from dxc.manage import shards as shard_tasks
from dxc.manage.importer import import_document
from dxc.protocol.live import realm_set_hash
from tests.conftest import postgres_database, running_server
from tests.pgbouncer import pgbouncer  # noqa: F401 (the fixture)
from tests.protocol_client import ALICE, Device, item
from tests.shard_databases import *  # noqa: F403 (the fixtures)
from tests.test_live_server import Socket, socket_url
from tests.test_replication_server import HttpClient

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    return REDIS_URL


def test_sync_and_live_changes_through_pgbouncer_in_transaction_mode(
    pgbouncer, shard_database, redis_url, tmp_path  # noqa: F811
):
    shard_url = shard_database()
    with postgres_database() as control_url, running_server(
        pgbouncer.url(control_url), tmp_path, {"REDIS_URL": redis_url}
    ) as server:
        services = server.services
        shard_tasks.add_shard(services, "pooled", pgbouncer.url(shard_url), weight=1)
        shard_tasks.update_shard(services, "default", weight=0)
        db_url = server.create_database()
        db_id = db_url.rsplit("/", 1)[1]
        assert services.router.shard_for(db_id).name == "pooled"
        import_document(services, db_id, {"demoUsers": {ALICE: {}}})
        shard_before = pgbouncer.transactions(make_url(shard_url).database)

        writer = Device(HttpClient(server.url), db_url, "writer")
        writer.login(ALICE)
        writer.sync([writer.op("items", "insert", ["itm-1"], "tx-1", values=[item("itm-1")])])
        reader = Device(HttpClient(server.url), db_url, "reader")
        reader.login(ALICE)
        reader.sync()
        assert list(reader.state["items"]) == ["itm-1"]

        live = Socket(socket_url(db_url, token=reader.token, clientId="reader"))
        live.send({
            "type": "ready",
            "rev": reader.last_pull["serverRevision"],
            "realmSetHash": realm_set_hash(reader.last_pull["realms"]),
        })
        live.round_trip()
        writer.sync([writer.op("items", "insert", ["itm-2"], "tx-2", values=[item("itm-2")])])
        message = live.receive()
        while message is not None and message["type"] != "changes":
            message = live.receive()
        assert message is not None, "the socket closed without the change"
        keys = [key for entry in message["changes"] for mut in entry["muts"]
                for key in mut["keys"]]
        assert keys == ["itm-2"]
        live.close()
        reader.sync()
        assert sorted(reader.state["items"]) == ["itm-1", "itm-2"]

        # It was the pooler that carried the shard's and the control database's work.
        assert pgbouncer.transactions(make_url(shard_url).database) > shard_before
        assert pgbouncer.transactions(make_url(control_url).database) > 0
        assert "Traceback" not in server.log()


def test_the_postgres_bus_through_pgbouncer_in_transaction_mode_is_refused(
    pgbouncer, tmp_path  # noqa: F811
):
    with (
        postgres_database() as control_url,
        running_server(pgbouncer.url(control_url), tmp_path, {"REDIS_URL": ""}) as server,
    ):
        # The port opens before the workers boot; a worker that fails to boot stops gunicorn.
        status = server.process.wait(timeout=120)
        log = server.log()
    assert status != 0
    assert "pooler in transaction mode" in log and "Redis bus" in log
