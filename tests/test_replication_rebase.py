"""A copy rebases old-based offline writes over the source's where-clause operations.

A device that synced at the source, went offline and then pushes to the
copy (after the switch-over) sends writes based on a revision of the
source; they must be rebased over the where-clause operations the source
recorded since (docs/migration.md, "Where-clause operations"). In-process:
the source's ``since=`` stream is applied to a second database of the same
installation, as the replication job does.
"""

from __future__ import annotations

from dxc import tson
from dxc.manage import databases
from dxc.manage.exporter import export_changes
from dxc.manage.importer import import_document
from dxc.replication.apply import apply_stream
from dxc.services import Services
from dxc.storage.objects import ObjectStore
from tests.protocol_client import ALICE, Device, item

UNDER_FOO = {"index": "path", "range": {"type": 2, "lower": "foo/", "upper": "foo/\uffff"}}
UNDER_BAR = {"index": "path", "range": {"type": 2, "lower": "bar/", "upper": "bar/\uffff"}}


def copy(services: Services, source_id: str, target_id: str) -> None:
    """Apply the source's whole ``since=0`` stream to the target."""
    text = "".join(export_changes(services, source_id, 0))
    lines = [line.encode() for line in text.splitlines()]
    apply_stream(services, target_id, lines, lambda *_: None)


def state(services: Services, db_id: str) -> tuple[dict, list]:
    """The database's rows (with revisions) and where-clause operations."""
    with services.router.shard_for(db_id).transaction(read_only=True) as connection:
        store = ObjectStore(connection, db_id)
        head = store.current_revision()
        rows = {
            (r.tbl, r.key): (r.realm_id, r.owner, r.rev, r.deleted, tson.loads(r.value or "null"))
            for r in store.changed_rows(0, head)
        }
        return rows, list(store.consistent_rows(0, head))


def test_an_old_based_offline_insert_is_rebased_at_the_copy_as_at_the_source(app):
    services = app.extensions["dxc"]
    source = databases.create_database(services)
    import_document(services, source.db_id, {"demoUsers": {ALICE: {}}})
    target = databases.create_database(services)

    alice = Device(app.test_client(), source.url, "device-1")
    alice.login(ALICE)
    alice.sync([alice.op("items", "insert", ["itm1", "itm2"], "t1", values=[
        item("itm1", path="foo/a"), item("itm2", path="bar/b"),
    ])])
    phone = Device(app.test_client(), source.url, "device-2")
    phone.login(ALICE)
    phone.sync()  # then offline, at this revision
    base = phone.last_pull["serverRevision"]
    alice.sync([
        alice.op("items", "delete", [], "t2", criteria=UNDER_FOO),
        alice.op("items", "modify", [], "t3", criteria=UNDER_BAR, changeSpec={"seen": 1}),
    ])

    copy(services, source.db_id, target.db_id)
    copy(services, source.db_id, target.db_id)  # a batch applied again: nothing doubles
    assert state(services, target.db_id) == state(services, source.db_id)
    assert len(state(services, source.db_id)[1]) == 2

    # The phone comes back with writes based on its old revision, at both places.
    for db_url in (source.url, target.url):
        device = Device(app.test_client(), db_url, phone.identity)
        device.login(ALICE)
        device.last_pull = phone.last_pull
        device.mutation_rev = phone.mutation_rev
        answer = device.sync(
            [device.op("items", "insert", ["itm8", "itm9"], "p1", values=[
                item("itm8", path="foo/x"), item("itm9", path="bar/y"),
            ])],
            base_revs=[{"tableName": "items", "clientRev": 1, "serverRev": base}],
        )
        assert answer["rejections"] == []

    rows, _ = state(services, target.db_id)
    assert rows == state(services, source.db_id)[0]
    assert ("items", "itm8") not in rows  # the where-delete reached it: never stored
    assert rows[("items", "itm9")][4]["seen"] == 1  # the where-modify too
