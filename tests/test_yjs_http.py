"""Y.js over HTTP, in-process, on SQLite and PostgreSQL: the ``y`` of ``/sync``, its
``yMessages``, ``/y/download`` with resume points, access rules and bad input.

The real client's side of the same is in tests/e2e/test_yjs_e2e.py.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from sqlalchemy import func, select

from dxc import tson
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.protocol.lib0 import Decoder
from dxc.storage import schema
from dxc.tson import Binary
from tests.protocol_client import ALICE, BOB, SCHEMA, Device, item

CAROL = "carol@demo.local"
UPDATE = bytes.fromhex("000005afd7d5b2010000010409067468656c6c6f01050101000001010000")


@pytest.fixture
def db_url(app) -> str:
    services = app.extensions["dxc"]
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}, BOB: {}, CAROL: {}}})
    return created.url


@pytest.fixture
def device(app, db_url):
    def make(user: str | None = ALICE, identity: str = "device-1") -> Device:
        dev = Device(app.test_client(), db_url, identity)
        dev.schema = {**SCHEMA, "items": {**SCHEMA["items"], "yProps": ["content"]}}
        if user:
            dev.login(user)
        return dev

    return make


def u_c(key: Any, i: int, update: bytes = UPDATE, table: str = "items") -> dict[str, Any]:
    return {
        "type": "u-c",
        "table": table,
        "prop": "content",
        "k": key,
        "u": Binary("Uint8Array", update),
        "i": i,
    }


def by_type(answer: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [m for m in answer["yMessages"] if m["type"] == kind]


def download(dev: Device, downloaded: dict[str, Any] | None = None, raw: bytes | None = None):
    headers = {"Content-Type": "application/json", "Accept": "application/octet-stream"}
    if dev.token:
        headers["Authorization"] = f"Bearer {dev.token}"
    body = raw if raw is not None else tson.dumps({"downloadedRealms": downloaded or {}})
    return dev.client.post(f"{dev.path}/y/download", data=body, headers=headers)


def records(body: bytes) -> list[tuple]:
    """The frames' records as (1, realm) / (2, table, prop) / (3, k, update), each
    frame parsed with a fresh decoder as the client does."""
    found: list[tuple] = []
    pos = 0
    while pos < len(body):
        (size,) = struct.unpack(">I", body[pos : pos + 4])
        frame = Decoder(body[pos + 4 : pos + 4 + size])
        pos += 4 + size
        while frame.has_content():
            tag = frame.uint8()
            if tag == 1:
                found.append((1, frame.var_string()))
            elif tag == 2:
                found.append((2, frame.var_string(), frame.var_string()))
            else:
                assert tag == 3, tag
                found.append((3, frame.any(), frame.var_uint8_array()))
    return found


def stored_updates(app, dev: Device) -> int:
    services = app.extensions["dxc"]
    table = schema.y_updates
    with services.router.shard_for(dev.db_id).transaction(read_only=True) as connection:
        return connection.scalar(
            select(func.count()).select_from(table).where(table.c.db_id == dev.db_id)
        )


def create(dev: Device, key: str, realm: str | None = None) -> None:
    dev.sync([dev.op("items", "insert", [key], f"tx-{key}", values=[item(key, realm=realm)])])


def test_an_update_is_acked_and_reaches_the_other_device_with_its_revision(device):
    alice, phone = device(), device(identity="device-2")
    alice.sync()
    phone.sync()
    create(alice, "itm1")
    answer = alice.sync(y=[u_c("itm1", 7)])
    ack = {"type": "u-ack", "table": "items", "prop": "content", "i": 7}
    assert by_type(answer, "u-ack") == [ack]
    assert by_type(answer, "u-s") == [], "a client's own update is not sent back"
    assert answer["yMessages"][-1] == {
        "type": "y-complete-sync-done",
        "yServerRev": answer["serverRevision"],
    }

    got = phone.sync()
    updates = by_type(got, "u-s")
    assert [(m["k"], m["u"].data) for m in updates] == [("itm1", UPDATE)]
    assert updates[0]["r"] == answer["serverRevision"]
    assert by_type(phone.sync(), "u-s") == [], "nothing again once the client has it"


def test_another_user_without_the_realm_never_gets_the_document(device):
    alice, bob = device(), device(BOB, "bob-1")
    alice.sync()
    bob.sync()
    create(alice, "itm1")
    alice.sync(y=[u_c("itm1", 1)])
    assert by_type(bob.sync(), "u-s") == []
    body = download(bob).get_data()
    assert [r for r in records(body) if r[0] != 1] == []
    assert {r[1] for r in records(body)} == {BOB, "rlm-public"}


def test_an_update_without_the_right_to_change_the_object_is_refused(app, device):
    alice, bob = device(), device(BOB, "bob-1")
    alice.sync()
    create(alice, "itm1")
    answer = bob.sync(y=[u_c("itm1", 4)])
    assert by_type(answer, "u-reject") == [
        {"type": "u-reject", "table": "items", "prop": "content", "i": 4}
    ]
    assert stored_updates(app, alice) == 0


def test_an_update_of_a_missing_or_deleted_object_is_refused(app, device):
    alice = device()
    alice.sync()
    assert by_type(alice.sync(y=[u_c("itm-none", 2)]), "u-reject")[0]["i"] == 2
    create(alice, "itm1")
    alice.sync(y=[u_c("itm1", 3)])
    assert stored_updates(app, alice) == 1
    alice.sync([alice.op("items", "delete", ["itm1"], "tx-del")])
    assert stored_updates(app, alice) == 0, "the document goes with its object"
    assert by_type(alice.sync(y=[u_c("itm1", 4)]), "u-reject")[0]["i"] == 4


def test_download_frames_realms_tables_and_documents_and_resumes(device):
    alice = device()
    alice.sync()
    for key in ("itm1", "itm2"):
        create(alice, key)
    alice.sync(y=[u_c("itm1", 1), u_c("itm2", 2)])
    alice.sync(y=[u_c("itm1", 3, UPDATE + b"")])  # a second update of itm1

    fresh = device(identity="device-3")
    response = download(fresh)
    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    assert records(response.get_data()) == [
        (1, ALICE),
        (2, "items", "content"),
        (3, "itm1", UPDATE),
        (3, "itm1", UPDATE),
        (3, "itm2", UPDATE),
        (1, "rlm-public"),
    ]
    resumed = download(fresh, {ALICE: {"tbl": "items", "prop": "content", "key": "itm1"}})
    assert records(resumed.get_data()) == [
        (1, ALICE),
        (2, "items", "content"),
        (3, "itm2", UPDATE),
        (1, "rlm-public"),
    ]
    done = download(fresh, {ALICE: "*", "rlm-public": "*"})
    assert done.status_code == 200 and done.get_data() == b""


def test_a_private_id_names_the_users_own_document(app, device):
    """The client sends a private object's key as #x:<user> in its data changes and as
    #x in Y messages (its local key): both name the same stored object."""
    alice, phone, bob = device(), device(identity="device-2"), device(BOB, "bob-1")
    for dev in (alice, phone, bob):
        dev.sync()
    mine = f"#itmPrefs:{ALICE}"
    alice.sync([alice.op("items", "insert", [mine], "tx-p", values=[item(mine, realm=ALICE)])])
    answer = alice.sync(y=[u_c("#itmPrefs", 1), u_c(mine, 2)])
    assert [m["i"] for m in by_type(answer, "u-ack")] == [1]
    assert [m["i"] for m in by_type(answer, "u-reject")] == [2], "#x:<user> is no local key"
    assert stored_updates(app, alice) == 1

    got = by_type(phone.sync(), "u-s")
    assert [(m["k"], m["u"].data) for m in got] == [("#itmPrefs", UPDATE)]
    assert [r for r in records(download(phone).get_data()) if r[0] == 3] == [
        (3, "#itmPrefs", UPDATE)
    ]
    resumed = download(phone, {ALICE: {"tbl": "items", "prop": "content", "key": "#itmPrefs"}})
    assert [r for r in records(resumed.get_data()) if r[0] == 3] == []

    refused = bob.sync(y=[u_c("#itmPrefs", 7)])
    assert [m["i"] for m in by_type(refused, "u-reject")] == [7], "bob's #itmPrefs is not there"
    assert by_type(bob.sync(), "u-s") == []
    assert stored_updates(app, alice) == 1


def test_a_document_follows_its_object_into_a_shared_realm(device):
    alice, bob = device(), device(BOB, "bob-1")
    alice.sync()
    bob.sync()
    realm = "rlm~shared"
    invite = {"id": "mmbBob", "realmId": realm, "owner": ALICE, "email": BOB, "invite": True,
              "permissions": {"update": {"items": ["content"]}}}
    answer = alice.sync(
        [
            alice.op("realms", "insert", [realm], "tx-r",
                     values=[{"realmId": realm, "owner": ALICE, "name": "shared"}]),
            alice.op("members", "insert", ["mmbBob"], "tx-r", values=[invite]),
        ]
    )
    assert answer["rejections"] == []
    bob.sync([bob.op("members", "update", ["mmbBob"], "accept",
                     changeSpecs=[{"accepted": tson.Date("2001-01-01T00:00:00.000Z")}])])
    create(alice, "itm1")
    alice.sync(y=[u_c("itm1", 1)])
    assert by_type(bob.sync(), "u-s") == []
    assert by_type(bob.sync(y=[u_c("itm1", 8)]), "u-reject"), "not bob's object yet"
    alice.sync([alice.op("items", "update", ["itm1"], "tx-move", changeSpecs=[{"realmId": realm}])])
    got = bob.sync()
    assert [(m["k"], m["u"].data) for m in by_type(got, "u-s")] == [("itm1", UPDATE)]
    assert by_type(bob.sync(y=[u_c("itm1", 9)]), "u-ack"), "bob may update content there"


@pytest.mark.parametrize(
    "y",
    [
        "not an array",
        {"type": "u-c"},
        [{"type": "u-c", "table": 5, "prop": "content", "k": "a", "i": 1}],
        [{"type": "u-c", "table": "items", "prop": "content", "k": "a", "i": -1}],
        [{"type": "u-c", "table": "items", "prop": "content", "k": "a", "i": "1"}],
    ],
)
def test_an_unusable_y_is_a_400(device, y):
    alice = device()
    body = tson.dumps({"clientIdentity": "dev", "schema": {}, "changes": [], "y": y}).encode()
    response = alice.post_sync([], raw=body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "y" in response.get_json()["message"]


@pytest.mark.parametrize(
    "entry",
    [
        {"u": "not bytes"},
        {"u": Binary("Uint8Array", b"")},
        {"k": {"an": "object"}},
        {"k": None},
        {"table": ""},
        {"prop": "x" * 300},
        {"k": "k" * 2000},
    ],
)
def test_an_unstorable_update_is_refused_by_its_id(app, device, entry):
    alice = device()
    alice.sync()
    create(alice, "itm1")
    answer = alice.sync(y=[{**u_c("itm1", 5), **entry}])
    assert [m["i"] for m in by_type(answer, "u-reject")] == [5]
    assert stored_updates(app, alice) == 0


def test_a_client_without_y_props_gets_no_updates(device):
    alice, phone = device(), device(identity="device-2")
    phone.schema = SCHEMA
    alice.sync()
    phone.sync()
    create(alice, "itm1")
    alice.sync(y=[u_c("itm1", 1)])
    assert [m["type"] for m in phone.sync()["yMessages"]] == ["y-complete-sync-done"]


def test_other_y_messages_are_ignored(device):
    alice = device()
    alice.sync()
    answer = alice.sync(y=[{"type": "sv", "table": "items", "prop": "content", "k": "a"}, 5, None])
    assert [m["type"] for m in answer["yMessages"]] == ["y-complete-sync-done"]


@pytest.mark.parametrize(
    "raw",
    [b"not tson", b"[]", b'{"downloadedRealms": 5}', b'{"downloadedRealms": []}'],
)
def test_a_bad_download_body_is_a_400(device, raw):
    response = download(device(), raw=raw)
    assert response.status_code == 400, response.get_data(as_text=True)


def test_an_unreadable_resume_point_starts_the_realm_again(device):
    alice = device()
    alice.sync()
    create(alice, "itm1")
    alice.sync(y=[u_c("itm1", 1)])
    body = download(alice, {ALICE: {"tbl": "items", "key": {"x": 1}}, "rlm-public": "*"})
    assert (3, "itm1", UPDATE) in records(body.get_data())


def test_download_needs_a_data_token(device):
    anonymous = device(None)
    assert download(anonymous).status_code == 200  # the public realm
    assert [r for r in records(download(anonymous).get_data())] == [(1, "rlm-public")]
