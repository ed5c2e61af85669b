"""Reliability under faults, with real processes: the real gunicorn server, a real addon device.

Each test runs the ``fault_writer`` scenario (device A writes a batch of items per transaction
and pushes; device B of the same user only listens on its socket), breaks something while A
writes, and then checks that:

- nothing is half-written: every transaction's items are all stored or none, and every stored
  item's revision is one recorded in ``applied_transactions`` (no higher than the counter);
- the device converges by itself: every item whose push was acknowledged is on the server
  exactly once, both devices hold what the server holds, and B receives a last write live.

The faults: SIGKILL of every worker while a /sync is writing; the server's own PostgreSQL
stopped and started; its own Redis (the live-changes bus) stopped and started; a HUP of the
gunicorn master. PostgreSQL and Redis are private instances on free ports (``faults.py``).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dxc import tson
from dxc.storage import schema
from tests.e2e.faults import (
    PrivatePostgres,
    PrivateRedis,
    Writer,
    http,
    kill_workers,
    replaced,
    wait_until,
    workers,
    write_in_progress,
)
from tests.e2e.test_sync_e2e import USER, db_id_of

#: Items per transaction: large enough that a kill lands while one is being written.
BIG_BATCH = 1500
SMALL_BATCH = 20
#: Fault tests shorten gunicorn's grace period: a HUP then replaces socket-holding workers soon.
GRACE_SECONDS = "5"
#: An anonymous pull: a /sync that needs the database and nothing else.
PULL_BODY = b'{"v":3,"clientIdentity":"fault-probe","schema":{},"changes":[]}'


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """As in conftest, plus ``own-postgresql``: a private cluster the test may stop."""
    if backend == "own-postgresql":
        return request.getfixturevalue("private_postgres").url
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'dxc.sqlite'}"
    return request.getfixturevalue("database_url_postgresql")


@pytest.fixture
def private_postgres():
    postgres = PrivatePostgres()
    try:
        postgres.start()
        yield postgres
    finally:
        postgres.close()


@pytest.fixture
def private_redis():
    redis_server = PrivateRedis()
    redis_server.start()
    yield redis_server
    redis_server.stop()


@pytest.fixture
def server_env(request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"DXC_GRACEFUL_TIMEOUT": GRACE_SECONDS}
    if "private_redis" in request.fixturenames:
        env["REDIS_URL"] = request.getfixturevalue("private_redis").url
    return env


@pytest.fixture
def db_url(server) -> str:
    return server.create_database(demo_users=(USER,))


def stored(server, db_url: str) -> tuple[list[str], set[int], set[int], int]:
    """The titles of the stored items, their revisions, the applied revisions, the counter."""
    db_id = db_id_of(db_url)
    objects, applied = schema.objects, schema.applied_transactions
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        rows = connection.execute(
            select(objects.c.value, objects.c.rev).where(
                objects.c.db_id == db_id, objects.c.tbl == "items", objects.c.deleted.is_(False)
            )
        ).all()
        applied_revs = set(
            connection.scalars(select(applied.c.rev).where(applied.c.db_id == db_id).distinct())
        )
        counter = connection.scalar(
            select(func.coalesce(func.max(schema.revisions.c.rev), 0)).where(
                schema.revisions.c.db_id == db_id
            )
        )
    titles = [tson.loads(row.value)["title"] for row in rows]
    return titles, {row.rev for row in rows}, applied_revs, counter


def assert_nothing_half_written(server, db_url: str, batch: int) -> list[str]:
    """Every transaction is all there or not at all; returns the stored titles."""
    titles, item_revs, applied_revs, counter = stored(server, db_url)
    rounds = Counter(title.rsplit(" #", 1)[0] for title in titles if " #" in title)
    partial = {name: count for name, count in rounds.items() if count != batch}
    assert not partial, f"transactions stored in part (items of {batch}): {partial}"
    unrecorded = item_revs - applied_revs
    assert not unrecorded, f"items of transactions not in applied_transactions: {unrecorded}"
    assert max(applied_revs, default=0) <= counter, "a transaction above the revision counter"
    return titles


def assert_converged(server, db_url: str, result: dict, batch: int) -> None:
    titles = assert_nothing_half_written(server, db_url, batch)
    mine = [title for title in titles if title.startswith(result["run"])]
    twice = [title for title, count in Counter(mine).items() if count > 1]
    assert not twice, f"stored twice: {twice[:5]}"
    missing = set(result["acked"]) - set(mine)
    assert not missing, f"{len(missing)} acknowledged items are missing, e.g. {sorted(missing)[:5]}"
    assert result["a"] == sorted(titles), "device A differs from the server"
    assert result["b"] == result["a"], "device B differs from device A"
    assert result["live"], "device B did not receive the last write through its socket"


def assert_no_server_errors(server) -> None:
    """No request was answered 500: an outage gives a 503, never an unexplained failure."""
    lines = server.log().splitlines()
    failed = [line for line in lines if "dxc.access" in line and " 500 " in line]
    assert not failed, "requests failed with 500:\n" + "\n".join(failed[:5])


def wait_ready(server, status: int) -> float:
    """Wait until /ready answers ``status``; the seconds it took."""
    started = time.monotonic()
    wait_until(lambda: http(f"{server.url}/ready")[0] == status, f"/ready to answer {status}")
    return time.monotonic() - started


def test_a_worker_killed_mid_sync_leaves_nothing_half_written(server, db_url, database_url):
    master = server.process.pid
    writer = Writer(server, db_url, USER, Path(server.log_path).parent, BIG_BATCH)
    writer.wait(lambda p: p["acked"] > 0, "the first acknowledged push")
    in_flight = []
    for _ in range(2):
        wait_until(lambda: write_in_progress(database_url), "a /sync writing its transaction")
        killed = kill_workers(master)
        assert killed, "no worker to kill"
        in_flight.append(writer.progress()["state"] == "pushing")
        assert_nothing_half_written(server, db_url, BIG_BATCH)
        replaced(master, killed)
        before = writer.progress()["acked"]
        writer.wait(lambda p, before=before: p["acked"] > before, "a push after the kill")
    result = writer.finish()
    # The addon retries a failed request by itself, so the device need not report a failure.
    assert any(in_flight), "no kill hit a push of the device: the test proved nothing"
    assert_converged(server, db_url, result, BIG_BATCH)


@pytest.mark.parametrize("backend", ["own-postgresql"])
def test_a_postgresql_restart_fails_requests_cleanly_and_recovers(
    server, db_url, private_postgres, capsys
):
    writer = Writer(server, db_url, USER, Path(server.log_path).parent, SMALL_BATCH)
    writer.wait(lambda p: p["acked"] > 0, "the first acknowledged push")
    private_postgres.stop()
    status, headers, body = http(f"{db_url}/sync", "POST", PULL_BODY)
    assert status == 503, (status, body)
    assert body["error"] == "unavailable" and headers.get("Retry-After")
    assert http(f"{server.url}/ready")[0] == 503
    assert http(f"{server.url}/health")[0] == 200
    failed = writer.progress()["failures"]
    writer.wait(lambda p: p["failures"] > failed, "the device to see the outage")

    private_postgres.start()
    # This process's own pool (the checks below) holds connections from before the restart,
    # and pools ping only idle connections: start it afresh, as the server's first request did.
    server.services.control.dispose()
    recovered = wait_ready(server, 200)
    before = writer.progress()["acked"]
    writer.wait(lambda p: p["acked"] > before, "a push after the restart")
    result = writer.finish()
    with capsys.disabled():
        print(f"\n/ready recovered {recovered:.1f} s after PostgreSQL was back")
    assert_converged(server, db_url, result, SMALL_BATCH)
    assert_no_server_errors(server)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_redis_outage_degrades_live_changes_only(server, db_url, private_redis, capsys):
    writer = Writer(server, db_url, USER, Path(server.log_path).parent, SMALL_BATCH)
    writer.wait(lambda p: p["acked"] > 0, "the first acknowledged push")
    private_redis.stop()
    assert http(f"{server.url}/ready")[0] == 503
    assert http(f"{server.url}/health")[0] == 200
    lost = "redis-bus listener lost its connection"
    wait_until(lambda: lost in server.log(), "the bus to notice the outage")
    before = writer.progress()["acked"]
    writer.wait(lambda p: p["acked"] >= before + 2 * SMALL_BATCH, "pushes while Redis is down")
    assert http(f"{server.url}/ready")[0] == 503, "Redis came back by itself?"

    private_redis.start()
    recovered = wait_ready(server, 200)
    result = writer.finish()  # its last write must reach device B through the Redis bus
    with capsys.disabled():
        print(f"\n/ready recovered {recovered:.1f} s after Redis was back")
    assert_converged(server, db_url, result, SMALL_BATCH)
    assert_no_server_errors(server)


def test_a_graceful_restart_under_load_loses_nothing(server, db_url):
    master = server.process.pid
    old = workers(master)
    writer = Writer(server, db_url, USER, Path(server.log_path).parent, SMALL_BATCH)
    writer.wait(lambda p: p["acked"] > 0, "the first acknowledged push")
    os.kill(master, signal.SIGHUP)
    new = replaced(master, old)
    before = writer.progress()["acked"]
    writer.wait(lambda p: p["acked"] > before, "a push after the HUP")
    result = writer.finish()
    assert_converged(server, db_url, result, SMALL_BATCH)
    reopened = [
        line
        for line in server.log().splitlines()
        if " live open " in line and any(f"[{pid}]" in line for pid in new)
    ]
    assert reopened, "no socket reconnected to a new worker"
    assert "graceful timeout" not in server.log(), "old workers held their sockets to the end"
    assert_no_server_errors(server)
