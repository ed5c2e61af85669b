"""What one ``/sync`` may do, in-process on SQLite and PostgreSQL (security issue 11, item 7).

A big request commits in several shard transactions (others get the revision
lock in between) and still applies everything exactly once; a where-clause
cannot make the worker build gigabytes; tables are registered only by
users who may write (or, for anonymous readers, tables that already hold
data) and only up to ``DXC_MAX_TABLES``.
"""

from __future__ import annotations

from contextlib import nullcontext

import pytest

from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.storage import tables as table_store
from dxc.sync import apply, service
from tests.protocol_client import ALICE, SCHEMA, Device, item


@pytest.fixture
def device(app):
    created = databases.create_database(app.extensions["dxc"])
    import_document(app.extensions["dxc"], created.db_id, {"demoUsers": {ALICE: {}}})

    def make(user: str | None = ALICE, identity: str = "device-1") -> Device:
        dev = Device(app.test_client(), created.url, identity)
        if user:
            dev.login(user)
        return dev

    return make


def revision(answer: dict) -> int:
    return int(answer["serverRevision"].split(":")[1])


def test_a_big_request_commits_in_parts_and_applies_once(device, monkeypatch):
    monkeypatch.setattr(service, "KEYS_PER_COMMIT", 10)
    alice = device()
    before = revision(alice.sync())
    changes = [alice.op("items", "insert", [f"itm{n}"], f"tx{n}", values=[item(f"itm{n}", n=n)])
               for n in range(45)]
    answer = alice.sync(changes)
    assert answer["rejections"] == []
    assert revision(answer) - before == 5, "45 keys in commits of 10"
    assert len(alice.state["items"]) == 45
    alice.last_pull = {**alice.last_pull, "serverRevision": f"1:{before}"}
    resent = alice.sync(changes)  # the answer was lost: everything is skipped, nothing doubled
    assert resent["rejections"] == [] and len(alice.state["items"]) == 45


def test_only_small_pushes_hold_the_lock_without_yielding(device, monkeypatch):
    """A big chunk yields at every statement, or it would stall its whole worker."""
    held = []
    monkeypatch.setattr(service, "holding_lock", lambda: held.append(1) or nullcontext())
    alice = device()
    alice.sync([alice.op("items", "insert", ["itmS"], "txS", values=[item("itmS")])])
    assert held == [1]
    keys = [f"itmB{n}" for n in range(service.UNYIELDING_KEYS + 1)]
    alice.sync([alice.op("items", "insert", keys, "txB", values=[item(k) for k in keys])])
    assert held == [1]
    assert len(alice.state["items"]) == len(keys) + 1


def test_a_where_clause_cannot_write_gigabytes(device, monkeypatch):
    monkeypatch.setattr(apply, "MAX_CRITERIA_WRITE_BYTES", 50_000)
    alice = device()
    values = [item(f"itm{n}", tag="T") for n in range(20)]
    alice.sync([alice.op("items", "insert", [v["id"] for v in values], "t1", values=values)])
    criteria = {"index": "tag", "range": {"type": 1, "lower": "T"}}
    answer = alice.sync([alice.op("items", "modify", [], "big", criteria=criteria,
                                  changeSpec={"blob": "x" * 5_000})])
    assert [r["txid"] for r in answer["rejections"]] == ["big"]
    assert "max_criteria_write_bytes" in answer["rejections"][0]["message"]
    assert "blob" not in alice.state["items"]["itm0"]
    answer = alice.sync([alice.op("items", "modify", [], "small", criteria=criteria,
                                  changeSpec={"blob": "x" * 100})])
    assert answer["rejections"] == []


def test_anonymous_clients_register_few_tables_and_those_that_hold_data(
    app, device, monkeypatch
):
    monkeypatch.setattr(service, "ANONYMOUS_TABLES", 0)
    anonymous = device(None)
    anonymous.post_sync([])  # the schema names items, realms, members, roles
    services = app.extensions["dxc"]
    with services.control.begin() as connection:
        assert table_store.get_tables(connection, anonymous.db_id) == {}
    public = {"rlm-public": {"items": {"itmP": {"title": "public"}}}}
    import_document(services, anonymous.db_id, {"data": public})  # data without a schema
    answer = anonymous.sync()
    assert answer["schema"]["items"]["idPrefix"] == "itm"
    assert anonymous.state["items"]["itmP"]["title"] == "public"
    with services.control.begin() as connection:
        assert set(table_store.get_tables(connection, anonymous.db_id)) == {"items"}


def test_tables_beyond_the_limit_are_refused_inside_the_answer(make_app):
    app = make_app(max_tables=5)
    created = databases.create_database(app.extensions["dxc"])
    import_document(app.extensions["dxc"], created.db_id, {"demoUsers": {ALICE: {}}})
    alice = Device(app.test_client(), created.url, "device-1")
    alice.login(ALICE)
    extra = {f"extra{n}": {"markedForSync": True} for n in range(3)}
    alice.schema = {**SCHEMA, **extra}
    answer = alice.sync([alice.op("extra2", "insert", ["k1"], "x", values=[{"id": "k1"}]),
                         alice.op("items", "insert", ["itm1"], "ok", values=[item("itm1")])])
    assert [r["txid"] for r in answer["rejections"]] == ["x"]
    assert "DXC_MAX_TABLES" in answer["rejections"][0]["message"]
    with app.extensions["dxc"].control.begin() as connection:
        assert len(table_store.get_tables(connection, alice.db_id)) == 5
    assert "itm1" in alice.state["items"]
