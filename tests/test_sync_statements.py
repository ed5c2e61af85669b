"""What a one-object ``/sync`` costs the database, on PostgreSQL: pinned, not timed.

Each statement and each transaction is a round trip (or two: BEGIN, COMMIT)
that the other devices of the user wait for; a change that adds one must
say why here. Counted in-process, as the real client sends it after its
first sync (with ``lastPull``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, event

from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.storage import router
from dxc.sync import service as sync_service
from tests.protocol_client import ALICE, BOB, Device, item

#: The user's deactivation check; UPDATE revisions and INSERT applied txids (one
#: statement: the revision and the claims at it, with the access stamp); INSERT the
#: object (its key is not read first: the INSERT leaves a live object of that key as it
#: is and says so, and the transaction is refused; a lone client transaction needs no
#: savepoint: a refusal rolls the shard transaction back); the bus's NOTIFY (after the
#: commit, in a transaction of its own, shared with the writes that come meanwhile). The
#: answer's realm set is the one the worker read at the same access stamp (the user's
#: earlier sync): no access row changed since. A device that was up to date learns of
#: no revision but its own: what it wrote is its answer (nothing, for a row stored as
#: it was sent), nothing is read back.
ONE_OBJECT_STATEMENTS = 4
#: A put (``upsert``) reads its key first: the rules judge a change by the old value.
ONE_OBJECT_PUT_STATEMENTS = ONE_OBJECT_STATEMENTS + 1
#: Another device wrote since this one's last pull: the answer also reads the changes
#: of its realms. No object left a realm since its revision, and no where-clause
#: operation came after its base (the counter tells both), so it reads no departures
#: and there is nothing to rebase its write on.
BEHIND_STATEMENTS = ONE_OBJECT_STATEMENTS + 1
#: One did: its write is rebased on the where-clause operations since (one read).
BEHIND_A_WHERE_CLAUSE_STATEMENTS = BEHIND_STATEMENTS + 1
#: The write. The user check, the answer's reads and the NOTIFY (in a gevent worker a
#: greenlet of the bus sends it, and the request does not wait for it; here the request
#: sends it) run in autocommit (no BEGIN, no COMMIT or ROLLBACK round trips).
ONE_OBJECT_TRANSACTIONS = 1


@dataclass
class Tally:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0


@contextmanager
def counting(engines: set[Engine]) -> Iterator[Tally]:
    """Count the statements and transactions sent through ``engines``."""
    tally = Tally()

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        tally.statements.append(" ".join(statement.split()[:3]))

    def on_begin(conn: Any) -> None:
        if not conn.connection.dbapi_connection.autocommit:  # else no BEGIN is sent
            tally.transactions += 1

    for engine in engines:
        event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine, "begin", on_begin)
    try:
        yield tally
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", on_execute)
            event.remove(engine, "begin", on_begin)


@pytest.fixture(autouse=True)
def no_periodic_rereads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The placement, table registry and shard versions are read again every few
    seconds: on a slow machine that read could fall into the counted sync."""
    monkeypatch.setattr(router, "PLACEMENT_TTL", 3600.0)
    monkeypatch.setattr(router, "SHARD_CHECK_SECONDS", 3600.0)
    monkeypatch.setattr(sync_service, "PLACEMENT_TTL", 3600.0)


def two_devices(app) -> tuple[set[Engine], Device, Device]:
    """Two devices of one user, both up to date, and the engines a sync can use."""
    services = app.extensions["dxc"]
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}, BOB: {}}})
    devices = []
    for name in ("device-1", "device-2"):
        device = Device(app.test_client(), created.url, name)
        device.login(ALICE)
        device.sync()
        devices.append(device)
    first, second = devices
    first.sync([first.op("items", "insert", ["itm0"], "tx0", values=[item("itm0")])])
    second.sync()
    return {services.control, services.router.shard_for(created.db_id).engine}, first, second


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize(
    ("kind", "key", "statements"),
    [("insert", "itm1", ONE_OBJECT_STATEMENTS), ("upsert", "itm0", ONE_OBJECT_PUT_STATEMENTS)],
)
def test_a_one_object_sync_costs_a_fixed_number_of_statements(app, kind, key, statements):
    engines, device, _ = two_devices(app)

    with counting(engines) as tally:
        answer = device.sync(
            [device.op("items", kind, [key], "tx1", values=[item(key, title="x")])]
        )

    assert answer["rejections"] == [] and device.state["items"][key]["title"] == "x"
    listing = "\n".join(tally.statements)
    assert len(tally.statements) == statements, listing
    assert tally.transactions == ONE_OBJECT_TRANSACTIONS, listing


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_device_behind_reads_what_the_others_wrote(app):
    engines, first, second = two_devices(app)
    first.sync([first.op("items", "upsert", ["itm0"], "tx1", values=[item("itm0", title="new")])])
    first.sync([first.op("items", "insert", ["itm1"], "tx2", values=[item("itm1")])])

    with counting(engines) as tally:
        answer = second.sync(
            [second.op("items", "insert", ["itm2"], "tx3", values=[item("itm2")])]
        )

    assert answer["rejections"] == []
    assert sorted(second.state["items"]) == ["itm0", "itm1", "itm2"]
    assert second.state["items"]["itm0"]["title"] == "new"
    listing = "\n".join(tally.statements)
    assert len(tally.statements) == BEHIND_STATEMENTS, listing


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_device_behind_a_where_clause_operation_reads_it_and_is_rebased(app):
    engines, first, second = two_devices(app)
    base = second.last_pull["serverRevision"]
    criteria = {"index": "title", "range": {"type": 2, "lower": "a", "upper": "a\uffff"}}
    first.sync([first.op("items", "modify", [], "tx1", criteria=criteria,
                         changeSpec={"done": True})])

    with counting(engines) as tally:
        answer = second.sync(
            [second.op("items", "insert", ["itm2"], "tx2", values=[item("itm2", title="ab")])],
            base_revs=[{"tableName": "items", "clientRev": 1, "serverRev": base}],
        )

    assert answer["rejections"] == []
    assert second.state["items"]["itm2"]["done"] is True
    listing = "\n".join(tally.statements)
    assert len(tally.statements) == BEHIND_A_WHERE_CLAUSE_STATEMENTS, listing


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_realm_set_is_read_again_once_an_access_row_changed(app):
    engines, first, second = two_devices(app)
    bob = Device(app.test_client(), "http://localhost" + first.path, "bob-device")
    bob.login(BOB)
    bob.sync()
    with counting(engines) as tally:
        second.sync()
    assert not [s for s in tally.statements if s.startswith("SELECT access_members")]

    shared = bob.sync([
        bob.op("realms", "insert", ["rlmShared"], "share",
               values=[{"realmId": "rlmShared", "name": "shared", "owner": BOB}]),
        bob.op("members", "insert", ["mmbAlice"], "share", values=[
            {"id": "mmbAlice", "realmId": "rlmShared", "owner": BOB, "email": ALICE}
        ]),
    ])
    assert shared["rejections"] == []
    with counting(engines) as tally:
        answer = second.sync()

    assert answer["inviteRealms"] == ["rlmShared"]
    assert [s for s in tally.statements if s.startswith("SELECT access_members")]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_device_behind_a_departure_reads_the_departures(app):
    engines, first, second = two_devices(app)
    first.sync([
        first.op("realms", "insert", ["rlmOther"], "r",
                 values=[{"realmId": "rlmOther", "name": "other", "owner": ALICE}]),
        first.op("items", "upsert", ["itm0"], "r", values=[item("itm0", realm="rlmOther")]),
    ])

    with counting(engines) as tally:
        answer = second.sync()

    assert answer["rejections"] == []
    assert second.state["items"]["itm0"]["realmId"] == "rlmOther"
    assert [s for s in tally.statements if s.startswith("SELECT departures")]
