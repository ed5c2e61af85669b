"""Shards in-process: the commands and their refusals, placement by weight, and a
database moved back and forth between shards while devices keep syncing.

The control database is SQLite or PostgreSQL (``backend``); the shards are
extra PostgreSQL databases, one of them on a second server of our own.
"""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from click.testing import Result
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from dxc import tson
from dxc.manage import databases, moves
from dxc.manage.importer import import_document
from dxc.storage import schema
from dxc.storage import shards as shard_store
from dxc.storage.objects import ObjectStore
from dxc.storage.shard_copy import count_rows
from tests.protocol_client import ALICE, BOB, Device, item
from tests.shard_databases import *  # noqa: F403 (the fixtures)
from tests.shard_databases import PASSWORD


def dxc(app, *args: str) -> Result:
    with app.app_context():
        return app.test_cli_runner().invoke(args=["dxc", *args], catch_exceptions=False)


def placed_on(services, db_id: str) -> str:
    services.router.forget(db_id)
    return services.router.shard_for(db_id).name


def shards_holding(services, db_id: str) -> list[str]:
    """The shards that have rows of ``db_id`` (any table)."""
    holding = []
    for shard in services.router.all_shards():
        with shard.transaction(read_only=True) as connection:
            if count_rows(connection, db_id):
                holding.append(shard.name)
    return holding


@pytest.fixture
def fast_moves(monkeypatch):
    """Old copies go 0.3 s after the switch (in-process, the router is ours)."""
    monkeypatch.setattr(moves, "PLACEMENT_TTL", 0.2)
    monkeypatch.setattr(moves, "CACHE_MARGIN_SECONDS", 0.1)


def test_shard_commands_and_their_refusals(app, shard_database, backend):
    services = app.extensions["dxc"]
    first, second = shard_database(), shard_database()
    keyword = first.replace("postgresql+psycopg2://", "")  # user:pw@host:port/db
    _, _, place = keyword.partition("@")
    host_port, _, name = place.partition("/")
    host, _, port = host_port.partition(":")
    added = dxc(app, "add-shard", "one", first, "--weight", "2")
    assert added.exit_code == 0, added.output
    assert "one" in added.output and PASSWORD not in added.output and "***" in added.output
    # Azure's keyword form works too; the same database twice does not.
    again = dxc(app, "add-shard", "again",
                f"Server={host};Database={name};Port={port};User Id=postgres;Password={PASSWORD};")
    assert again.exit_code != 0 and "is shard 'one' already" in again.output
    assert PASSWORD not in again.output
    assert dxc(app, "add-shard", "two", second).exit_code == 0

    refusals = [
        (("add-shard", "one", second), "named 'one' already"),
        (("add-shard", "Bad Name", second), "a shard name is"),
        (("add-shard", "x", "sqlite:///x.db"), "a shard is a PostgreSQL database"),
        (("add-shard", "x", "Server=h"), "needs Server= and Database="),
        (("add-shard", "x", f"postgresql://u:{PASSWORD}@127.0.0.1:1/none"), "cannot use"),
        (("add-shard", "x", second, "--weight", "-1"), "the weight is"),
        (("update-shard", "nope", "--weight", "1"), "no shard named 'nope'"),
        (("update-shard", "default", "--url", second), "is the control database"),
        (("update-shard", "one"), "nothing to change"),
        (("remove-shard", "default"), "cannot be removed"),
        (("move-realms", "--to", "one", "--realm", "rlm-x"), "not supported yet"),
        (("move-realms", "--from", "one", "--fraction", "0", "--to", "two"), "above 0"),
        (("move-realms", "--from", "one", "--fraction", "1.5", "--to", "two"), "above 0"),
        (("move-realms", "--from", "one", "--to", "one"), "the same shard"),
        (("move-realms", "--from", "nope", "--to", "one"), "no shard named 'nope'"),
        (("move-realms", "--db", "z1", "--fraction", "0.5", "--to", "one"), "goes with --from"),
        (("move-realms", "--db", "z1", "--from", "one", "--to", "two"), "--db DBID or --from"),
        (("move-realms", "--to", "nope", "--db", "znothere1"), "no shard named 'nope'"),
        (("move-realms", "--to", "one", "--db", "znothere1"), "no database 'znothere1'"),
        (("move-realms", "--to", "one"), "--db DBID or --from NAME"),
    ]
    for args, message in refusals:
        done = dxc(app, *args)
        assert done.exit_code != 0 and message in done.output, (args, done.output)
        assert PASSWORD not in done.output and "Traceback" not in done.output

    updated = dxc(app, "update-shard", "two", "--weight", "3", "--read-only")
    assert updated.exit_code == 0 and "weight 3, read-only" in updated.output
    assert dxc(app, "update-shard", "one", "--weight", "0").exit_code == 0
    db_id = databases.create_database(services).db_id
    assert placed_on(services, db_id) == "default"  # "one" weighs 0, "two" is read-only
    assert dxc(app, "update-shard", "two", "--url", second, "--writable").exit_code == 0
    moved = dxc(app, "move-realms", "--db", db_id, "--to", "two")
    assert moved.exit_code == 0, moved.output
    listing = json.loads(dxc(app, "shards", "--json").output)
    by_name = {row["name"]: row for row in listing}
    assert db_id in by_name["two"]["databases"]
    assert all(row["health"] == "ok" for row in listing)
    assert by_name["two"]["size_bytes"] > 0 and by_name["two"]["objects"] == 0
    assert PASSWORD not in json.dumps(listing)
    table = dxc(app, "shards").output
    assert "two" in table and "ok" in table and PASSWORD not in table

    refused = dxc(app, "remove-shard", "two")
    assert refused.exit_code != 0
    assert f"move-realms --db {db_id} --to " in refused.output
    assert dxc(app, "move-realms", "--db", db_id, "--to", "two").exit_code != 0  # already there
    assert dxc(app, "update-shard", "one", "--read-only").exit_code == 0
    assert "read-only" in dxc(app, "move-realms", "--db", db_id, "--to", "one").output
    back = dxc(app, "move-realms", "--db", services.settings.database_url_for(db_id),
               "--to", "default")
    assert back.exit_code == 0, back.output
    removed = dxc(app, "remove-shard", "two")
    assert removed.exit_code == 0, removed.output
    assert "two" not in [row["name"] for row in json.loads(dxc(app, "shards", "--json").output)]


def test_an_unreachable_shard_is_listed_as_such(app, shard_database):
    services = app.extensions["dxc"]
    assert dxc(app, "add-shard", "gone", shard_database()).exit_code == 0
    with services.control.begin() as connection:
        connection.execute(
            schema.shards.update().where(schema.shards.c.name == "gone").values(
                **services.router.seal.columns(
                    make_url(f"postgresql+psycopg2://postgres:{PASSWORD}@127.0.0.1:1/none")
                )
            )
        )
    services.router.close(next(s.id for s in services.router.all_shards() if s.name == "gone"))
    listing = {row["name"]: row for row in json.loads(dxc(app, "shards", "--json").output)}
    assert listing["gone"]["health"].startswith("unreachable")
    assert listing["default"]["health"] == "ok"


def test_new_databases_are_placed_by_weight(app, shard_database):
    services = app.extensions["dxc"]
    assert dxc(app, "add-shard", "heavy", shard_database(), "--weight", "3").exit_code == 0
    assert dxc(app, "add-shard", "closed", shard_database(), "--weight", "50").exit_code == 0
    assert dxc(app, "update-shard", "closed", "--read-only").exit_code == 0
    placed = [placed_on(services, databases.create_database(services).db_id) for _ in range(12)]
    assert "closed" not in placed
    # The 3:1 share, drawn with a seeded chooser so that the check cannot fail by chance.
    chooser = random.Random(12)
    with services.control.connect() as connection:
        names = {row.id: row.name for row in shard_store.list_shards(connection)}
        drawn = [names[shard_store.pick_shard(connection, chooser)] for _ in range(4000)]
    assert "closed" not in drawn
    assert 0.72 < drawn.count("heavy") / len(drawn) < 0.78
    assert dxc(app, "update-shard", "default", "--weight", "0").exit_code == 0
    assert {placed_on(services, databases.create_database(services).db_id)
            for _ in range(5)} == {"heavy"}


def test_a_fraction_of_a_shard_moves_biggest_first_then_the_rest(app, shard_database, fast_moves):
    """``--from --fraction`` moves the biggest databases that fit in that share of the
    shard's live objects; without ``--fraction`` every database goes and the shard can be
    removed. Every object arrives."""
    services = app.extensions["dxc"]
    assert dxc(app, "add-shard", "one", shard_database(), "--weight", "0").exit_code == 0
    assert dxc(app, "add-shard", "two", shard_database(), "--weight", "0").exit_code == 0
    sizes = {"big": 40, "mid": 20, "small": 10, "empty": 0}
    ids = {}
    for name, size in sizes.items():
        ids[name] = db_id = databases.create_database(services).db_id
        assert dxc(app, "move-realms", "--db", db_id, "--to", "one").exit_code == 0
        items = {f"itm{name}{i}": {"n": i} for i in range(size)}
        import_document(services, db_id, {"data": {"rlm-public": {"items": items}}})

    # Weights (objects + 1): 41, 21, 11, 1 of 74; half is 37: "big" does not fit, the rest does.
    half = dxc(app, "move-realms", "--from", "one", "--to", "two", "--fraction", "0.5")
    assert half.exit_code == 0, half.output
    assert "3 database(s) with 30 of the 70 live objects" in half.output
    assert {name: placed_on(services, db_id) for name, db_id in ids.items()} == {
        "big": "one", "mid": "two", "small": "two", "empty": "two"}
    # A fraction smaller than any database still moves one: the smallest.
    tiny = dxc(app, "move-realms", "--from", "two", "--to", "one", "--fraction", "0.01")
    assert tiny.exit_code == 0 and placed_on(services, ids["empty"]) == "one", tiny.output

    rest = dxc(app, "move-realms", "--from", "one", "--to", "two")
    assert rest.exit_code == 0, rest.output
    assert {placed_on(services, db_id) for db_id in ids.values()} == {"two"}
    for name, db_id in ids.items():
        assert shards_holding(services, db_id) == ["two"]
        with services.router.shard_for(db_id).transaction(read_only=True) as connection:
            assert sum(ObjectStore(connection, db_id).live_counts().values()) == sizes[name]
    assert dxc(app, "remove-shard", "one").exit_code == 0


def test_a_drain_waits_for_the_placement_caches_once(app, shard_database, fast_moves,
                                                    monkeypatch):
    """The old copies go once every database moved: other processes' placement caches
    are waited for once, not once per database."""
    services = app.extensions["dxc"]
    assert dxc(app, "add-shard", "one", shard_database(), "--weight", "0").exit_code == 0
    assert dxc(app, "add-shard", "two", shard_database(), "--weight", "0").exit_code == 0
    ids = [databases.create_database(services).db_id for _ in range(3)]
    for db_id in ids:
        assert dxc(app, "move-realms", "--db", db_id, "--to", "one").exit_code == 0
    monkeypatch.setattr(moves, "PLACEMENT_TTL", 1.0)
    monkeypatch.setattr(moves, "CACHE_MARGIN_SECONDS", 0.0)
    waits: list[float] = []
    sleep = time.sleep

    def waiting(seconds: float) -> None:
        waits.append(seconds)
        sleep(seconds)

    monkeypatch.setattr(moves.time, "sleep", waiting)
    drained = dxc(app, "move-realms", "--from", "one", "--to", "two")

    assert drained.exit_code == 0, drained.output
    assert drained.output.count("Removed the old copy.") == 3
    assert all(shards_holding(services, db_id) == ["two"] for db_id in ids)
    assert 0 < sum(waits) <= moves.PLACEMENT_TTL


def test_devices_keep_syncing_while_their_database_moves_back_and_forth(
    app, shard_database, private_shard_database, fast_moves
):
    """Writers push all along; a reader pulls incrementally with its old revision
    token; at the end nothing acknowledged is missing, the reader converges without
    a full re-pull, and the database lives on one shard only."""
    services = app.extensions["dxc"]
    assert dxc(app, "add-shard", "local", shard_database(), "--weight", "0").exit_code == 0
    assert dxc(app, "add-shard", "private", private_shard_database, "--weight", "0").exit_code == 0
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}, BOB: {}}})

    def device(name: str, user: str) -> Device:
        dev = Device(app.test_client(), created.url, name)
        dev.login(user)
        return dev

    acknowledged: list[str] = []
    retried: list[str] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def write(user: str) -> None:
        writer = device(f"writer-{user}", user)
        number = 0
        try:
            while not stop.is_set():
                key = f"itm-{user[:3]}-{number}"
                answer = writer.post_sync(
                    [writer.op("items", "insert", [key], f"t{number}", values=[item(key, user)])]
                )
                if answer.status_code == 200:
                    writer.apply(tson.loads(answer.get_data()))
                    acknowledged.append(key)
                    number += 1
                else:  # a retryable 503 (the client resends), nothing else
                    assert answer.status_code == 503, answer.get_data(as_text=True)
                    retried.append(key)
        except BaseException as error:
            failures.append(error)

    reader = device("reader", ALICE)
    reader.sync()
    threads = [threading.Thread(target=write, args=(user,)) for user in (ALICE, BOB)]
    for thread in threads:
        thread.start()
    try:
        for target in ("local", "private", "default", "private"):
            time.sleep(0.3)
            moved = dxc(app, "move-realms", "--db", created.db_id, "--to", target)
            assert moved.exit_code == 0, moved.output
            reader.sync()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures, failures
    token_before = reader.last_pull["serverRevision"]
    reader.sync()
    assert reader.last_pull["serverRevision"].split(":")[0] == token_before.split(":")[0]

    mine = {key for key in acknowledged if key.startswith("itm-ali")}
    assert set(reader.state["items"]) >= mine
    fresh = device("fresh", ALICE)
    fresh.sync()
    assert fresh.state["items"] == reader.state["items"]
    assert placed_on(services, created.db_id) == "private"
    assert shards_holding(services, created.db_id) == ["private"]
    with services.router.shard_for(created.db_id).transaction(read_only=True) as connection:
        stored = connection.scalar(
            select(func.count()).select_from(schema.objects).where(
                schema.objects.c.db_id == created.db_id, schema.objects.c.tbl == "items"
            )
        )
    assert stored == len(acknowledged) == len(set(acknowledged))
    assert len(acknowledged) > 20
