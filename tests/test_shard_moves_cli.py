"""``flask dxc move-realms`` killed at each step, then run again.

The move runs in a child process that dies (``DXC_MOVE_FAIL_AT``) before the
copy, after the first pass, just before the switch (after the source was
fenced, when the source is not the control database) and just after it. Each
time the database is then served by exactly one shard (only one has its
revision counter), nothing is lost, and running the command again finishes
the move: one copy, on the target, and a device's old revision token still
pulls incrementally.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dxc.manage import databases, moves
from dxc.manage.importer import import_document
from dxc.manage.shards import add_shard
from dxc.storage import schema
from dxc.storage.objects import ObjectStore
from dxc.storage.shard_copy import count_rows
from tests.conftest import free_port, server_environment
from tests.protocol_client import ALICE, Device, item
from tests.shard_databases import *  # noqa: F403 (the fixtures)
from tests.test_cli import flask

ITEMS = 30


def counters(services, db_id: str) -> dict[str, int]:
    """Shard name -> the revision its counter of ``db_id`` holds, where there is one."""
    found = {}
    for shard in services.router.all_shards():
        with shard.transaction(read_only=True) as connection:
            rev = connection.scalar(
                select(schema.revisions.c.rev).where(schema.revisions.c.db_id == db_id)
            )
        if rev is not None:
            found[shard.name] = rev
    return found


@pytest.mark.parametrize("step", moves.STEPS)
@pytest.mark.parametrize("direction", ["default-to-far", "far-to-default"])
def test_a_killed_move_leaves_one_shard_serving_and_a_rerun_finishes_it(
    app, shard_database, tmp_path, step, direction, monkeypatch
):
    services = app.extensions["dxc"]
    env = server_environment(str(services.settings.database_url.render_as_string(
        hide_password=False)), tmp_path, free_port())
    env["DXC_SECRET"] = services.settings.secret  # the one that sealed the shard's URL
    add_shard(services, "far", shard_database(), weight=0)
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}}})
    device = Device(app.test_client(), created.url, "device")
    device.login(ALICE)
    for n in range(ITEMS):
        device.sync([device.op("items", "insert", [f"itm{n}"], f"t{n}", values=[item(f"itm{n}")])])
    source, target = ("default", "far") if direction == "default-to-far" else ("far", "default")
    if source == "far":
        monkeypatch.setattr(moves, "PLACEMENT_TTL", 0.1)
        moves.move_database(services, created.db_id, "far", hold_seconds=5)
    head = counters(services, created.db_id)[source]

    killed = flask({**env, "DXC_MOVE_FAIL_AT": step}, tmp_path,
                   "move-realms", "--db", created.db_id, "--to", target)
    assert killed.returncode == 75, killed.stdout + killed.stderr

    services.router.forget(created.db_id)
    found = counters(services, created.db_id)
    placed = services.router.shard_for(created.db_id).name
    assert placed == (target if step == "after-switch" else source)
    # Killed between the fence and the switch: the placement still names the fenced
    # source, which refuses (503) until the rerun switches; the copy has everything.
    fenced = step == "before-switch" and source == "far"
    assert found.get(target if fenced else placed) == head, found  # nothing lost
    if step == "after-switch" or fenced:
        assert list(found) == [target], found
    elif step != "before-switch":
        assert list(found) == [source], found
    # (Killed just before the commit that fences and switches at once, the verified copy
    # keeps its counter until the rerun clears it; nothing routes there.)
    if not fenced:  # a fenced source waits for the rerun: it answers 503 until then
        device.sync([device.op("items", "insert", ["itm-k"], "tk", values=[item("itm-k")])])

    finished = flask(env, tmp_path, "move-realms", "--db", created.db_id, "--to", target)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    services.router.forget(created.db_id)
    assert services.router.shard_for(created.db_id).name == target
    holding = []
    for shard in services.router.all_shards():
        with shard.transaction(read_only=True) as connection:
            if count_rows(connection, created.db_id):
                holding.append(shard.name)
    assert holding == [target]

    old_token = device.last_pull["serverRevision"]
    answer = device.sync([device.op("items", "insert", ["itm-z"], "tz", values=[item("itm-z")])])
    assert answer["serverRevision"].split(":")[0] == old_token.split(":")[0]
    fresh = Device(app.test_client(), created.url, "fresh")
    fresh.login(ALICE)
    fresh.sync()
    expected = {f"itm{n}" for n in range(ITEMS)} | {"itm-z"} | (set() if fenced else {"itm-k"})
    assert set(fresh.state["items"]) == expected
    assert device.state["items"] == fresh.state["items"]
    with services.control.connect() as connection:
        assert connection.scalar(select(schema.shard_moves.c.db_id)) is None


def test_a_killed_move_of_a_whole_shard_is_finished_by_running_it_again(
    app, shard_database, tmp_path
):
    """``--from`` moves database after database; killed inside the first move, the rerun
    finishes that one first and then moves the others."""
    services = app.extensions["dxc"]
    env = server_environment(str(services.settings.database_url.render_as_string(
        hide_password=False)), tmp_path, free_port())
    env["DXC_SECRET"] = services.settings.secret  # the one that sealed the shard's URL
    add_shard(services, "far", shard_database(), weight=0)
    db_ids = [databases.create_database(services).db_id for _ in range(2)]
    for n, db_id in enumerate(db_ids):
        items = {f"itm{i}": {"n": i} for i in range(ITEMS * (n + 1))}
        import_document(services, db_id, {"data": {"rlm-public": {"items": items}}})

    killed = flask({**env, "DXC_MOVE_FAIL_AT": "mid-copy"}, tmp_path,
                   "move-realms", "--from", "default", "--to", "far")
    assert killed.returncode == 75, killed.stdout + killed.stderr
    with services.control.connect() as connection:
        interrupted = connection.scalar(select(schema.shard_moves.c.db_id))
    assert interrupted == db_ids[1]  # the bigger one goes first

    finished = flask(env, tmp_path, "move-realms", "--from", "default", "--to", "far")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"Moving 2 database(s) with {ITEMS * 3} of the {ITEMS * 3}" in finished.stdout
    for n, db_id in enumerate(db_ids):
        services.router.forget(db_id)
        assert services.router.shard_for(db_id).name == "far"
        assert list(counters(services, db_id)) == ["far"]
        with services.router.shard_for(db_id).transaction(read_only=True) as connection:
            assert count_rows(connection, db_id) > 0
            assert sum(ObjectStore(connection, db_id).live_counts().values()) == ITEMS * (n + 1)
    with services.control.connect() as connection:
        assert connection.scalar(select(schema.shard_moves.c.db_id)) is None
