"""Compacting Y.js documents, in-process on SQLite and PostgreSQL, with updates the real
yjs made (tests/yjs_node.py): the stored updates drop to one, and a new device (through
/y/download) and a device that synced before (through /sync) read the same document."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.storage import schema
from dxc.storage.ydocs import YDocStore, follow_parent
from tests import yjs_node
from tests.protocol_client import ALICE, SCHEMA, Device
from tests.test_transfer_http import invoke
from tests.test_yjs_http import by_type, create, db_url, device, download, records, stored_updates
from tests.test_yjs_http import u_c as _u_c

__all__ = ["db_url", "device"]  # fixtures


def u_c(i: int, update: bytes) -> dict[str, Any]:
    return _u_c("itm1", i, update)


def send(dev: Device, updates: list[bytes], first: int = 0) -> None:
    for start in range(0, len(updates), 25):
        chunk = updates[start : start + 25]
        answer = dev.sync(y=[u_c(first + start + n, u) for n, u in enumerate(chunk)])
        assert len(by_type(answer, "u-ack")) == len(chunk)


def received(answer: dict[str, Any]) -> list[bytes]:
    return [message["u"].data for message in by_type(answer, "u-s")]


def downloaded(dev: Device) -> list[bytes]:
    response = download(dev)
    assert response.status_code == 200
    return [record[2] for record in records(response.get_data()) if record[0] == 3]


def test_compaction_keeps_the_document_for_new_and_old_devices(app, device):
    made = yjs_node.generate(11)
    updates = yjs_node.v2_updates(made)
    first, second = len(updates) // 3, 2 * len(updates) // 3
    alice, old = device(), device(identity="device-2")
    alice.sync()
    old.sync()
    create(alice, "itm1")

    send(alice, updates[:first])
    old_has = received(old.sync())
    assert len(old_has) == first
    send(alice, updates[first:second], first)
    assert stored_updates(app, alice) == second

    removed = app.extensions["dxc"].ycompaction.compact(alice.db_id, 10)
    assert removed == second - 1
    assert stored_updates(app, alice) == 1
    send(alice, updates[second:], second)  # edits after the compaction

    fresh = downloaded(device(identity="device-3"))
    assert len(fresh) == 1 + len(updates) - second
    assert yjs_node.content_of(fresh) == made["content"]
    assert sum(map(len, fresh)) < sum(map(len, updates))

    old_has += received(old.sync())
    assert yjs_node.content_of(old_has) == made["content"]
    assert received(old.sync()) == [], "nothing again once it has them"


def test_the_sender_of_merged_updates_gets_the_others_in_them(app, device):
    """The merged update holds everyone's updates, so it goes to their senders too."""
    made = yjs_node.generate(12)
    updates = yjs_node.v2_updates(made)
    alice, bob_phone = device(), device(identity="device-2")
    alice.sync()
    create(alice, "itm1")
    bob_phone.sync()
    send(alice, updates[: len(updates) // 2])
    send(bob_phone, updates[len(updates) // 2 :], 1000)  # alice has not seen these
    app.extensions["dxc"].ycompaction.compact(alice.db_id, 10)
    assert yjs_node.content_of(updates[: len(updates) // 2] + received(alice.sync())) == (
        made["content"]
    )


def test_updates_that_changed_since_they_were_read_are_not_replaced(app, device):
    made = yjs_node.generate(13)
    alice = device()
    alice.sync()
    create(alice, "itm1")
    send(alice, yjs_node.v2_updates(made)[:5])
    shard = app.extensions["dxc"].router.shard_for(alice.db_id)
    with shard.transaction() as connection:
        read = YDocStore(connection, alice.db_id).oldest("items", "content", "itm1", 100)
        follow_parent(connection, alice.db_id, "items", "itm1", 999)  # e.g. the object moved
        assert not YDocStore(connection, alice.db_id).replace(read, b"merged")
        table = schema.y_updates
        assert len(connection.execute(select(table.c.id)).all()) == 5


def test_a_document_with_an_unreadable_update_is_left_as_it_is(app, device):
    made = yjs_node.generate(14)
    alice = device()
    alice.sync()
    create(alice, "itm1")
    send(alice, [*yjs_node.v2_updates(made)[:12], b"\x00\x01\x02not an update"])
    assert app.extensions["dxc"].ycompaction.compact(alice.db_id, 10) == 0
    assert stored_updates(app, alice) == 13


def test_storing_updates_schedules_a_compaction(make_app):
    app = make_app(y_compact_after=10, y_compact_every=3600)
    services = app.extensions["dxc"]
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}}})
    alice = Device(app.test_client(), created.url, "device-1")
    alice.schema = {**SCHEMA, "items": {**SCHEMA["items"], "yProps": ["content"]}}
    alice.login(ALICE)
    alice.sync()
    create(alice, "itm1")
    made = yjs_node.generate(15)
    send(alice, yjs_node.v2_updates(made)[:11])  # 25 a sync: one sync, one job
    deadline = time.monotonic() + 30
    while stored_updates(app, alice) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored_updates(app, alice) == 1
    assert yjs_node.content_of(downloaded(alice)) == yjs_node.content_of(
        yjs_node.v2_updates(made)[:11]
    )


def test_cli_compacts_a_database(app, device, db_url):
    made = yjs_node.generate(16)
    alice = device()
    alice.sync()
    create(alice, "itm1")
    send(alice, yjs_node.v2_updates(made)[:4])
    result = invoke(app, ["dxc", "compact-ydocs", "--db", db_url, "--more-than", "1"])
    assert result.exit_code == 0, result.output
    assert "Merged away 3 Y update(s) in 1 database(s)." in result.output
    assert stored_updates(app, alice) == 1
    assert yjs_node.content_of(downloaded(alice)) == yjs_node.content_of(
        yjs_node.v2_updates(made)[:4]
    )
