"""Real clients keep syncing while their database moves between shards.

The real server (gunicorn + gevent, control database on SQLite or PostgreSQL)
with two more shards: a database on the local PostgreSQL server and one on a
private ``initdb`` cluster. Two users each run the ``fault_writer`` scenario
(device A pushes a batch of items per transaction, device B only listens on
its socket) while the test moves their database default → local → private →
default → private. Then every acknowledged write is stored exactly once, no
transaction is stored in part, the devices hold what the server holds (they
converged with their revision tokens, no user action), B received a last write
live, no request failed with a 500, and the database is on one shard only.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dxc.manage import moves
from dxc.manage.shards import add_shard
from dxc.storage.shard_copy import count_rows
from tests.e2e.faults import Writer
from tests.e2e.test_faults_e2e import (
    assert_no_server_errors,
    assert_nothing_half_written,
)
from tests.e2e.test_sync_e2e import db_id_of
from tests.shard_databases import *  # noqa: F403 (the fixtures)

USERS = ("ann@demo.local", "ben@demo.local")
BATCH = 50
ROUTE = ("local", "private", "default", "private")


def test_clients_converge_while_their_database_moves_between_shards(
    server, shard_database, private_shard_database, tmp_path
):
    services = server.services
    add_shard(services, "local", shard_database(), weight=0)
    add_shard(services, "private", private_shard_database, weight=0)
    db_url = server.create_database(demo_users=USERS)
    db_id = db_id_of(db_url)
    writers = []
    for user in USERS:
        folder = Path(tmp_path) / user
        folder.mkdir()
        writers.append(Writer(server, db_url, user, folder, BATCH))
    for writer in writers:
        writer.wait(lambda p: p["acked"] > 0, "a first acknowledged push")

    held = []
    for target in ROUTE:
        before = [writer.progress()["acked"] for writer in writers]
        report = moves.move_database(services, db_id, target, hold_seconds=5)
        held.append(report.held_seconds)
        for writer, count in zip(writers, before, strict=True):
            writer.wait(lambda p, count=count: p["acked"] > count, f"a push after {target}")
    results = [writer.finish() for writer in writers]

    titles = assert_nothing_half_written(server, db_url, BATCH)
    for result in results:
        mine = [title for title in titles if title.startswith(result["run"])]
        twice = [title for title, count in Counter(mine).items() if count > 1]
        assert not twice, f"stored twice: {twice[:5]}"
        missing = set(result["acked"]) - set(mine)
        assert not missing, f"{len(missing)} acknowledged items missing, e.g. {sorted(missing)[:5]}"
        assert result["a"] == sorted(mine), "device A differs from the server"
        assert result["b"] == result["a"], "device B differs from device A"
        assert result["live"], "device B did not receive the last write through its socket"
    assert_no_server_errors(server)
    services.router.forget(db_id)
    assert services.router.shard_for(db_id).name == "private"
    holding = []
    for shard in services.router.all_shards():
        with shard.transaction(read_only=True) as connection:
            if count_rows(connection, db_id):
                holding.append(shard.name)
    assert holding == ["private"]
    print(f"writes held per move (s): {[round(s, 3) for s in held]}")
