"""``GET /<db>/export/yjs`` and ``POST /<db>/import/yjs`` in-process (the ``yjs.dcyj``
part of a CLI export zip), on SQLite and PostgreSQL. The real CLI and a real device:
tests/e2e/test_yjs_cli_e2e.py.
"""

from __future__ import annotations

import gzip
import json
import struct

import pytest

from dxc.auth.tokens import AccessClaims
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.manage.y_archive import MAGIC
from tests import archive_parts, test_yjs_http
from tests.protocol_client import ALICE, BOB, Device
from tests.test_yjs_http import UPDATE, by_type, create, download, records, stored_updates, u_c

ADMIN = ("ACCESS_DB", "GLOBAL_READ", "GLOBAL_WRITE")
db_url, device = test_yjs_http.db_url, test_yjs_http.device  # fixtures
OTHER_UPDATE = bytes.fromhex("000002f1c0a6d20d00000104090674e2808b0101000001010000")


def admin(app, db_id: str, *scopes: str) -> dict[str, str]:
    claims = AccessClaims(ALICE, frozenset(scopes or ADMIN), "demo", ALICE)
    token = app.extensions["dxc"].signer.issue(db_id, claims).token
    return {"Authorization": f"Bearer {token}"}


def export(app, db_id: str, query: str = "") -> bytes:
    client = app.test_client()
    response = client.get(f"/{db_id}/export/yjs{query}", headers=admin(app, db_id))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/octet-stream"
    return response.data


def parts(archive: bytes) -> list[tuple[dict, bytes]]:
    return archive_parts.records(archive, MAGIC)


def post_yjs(app, db_id: str, body: bytes, headers: dict[str, str] | None = None):
    headers = {**(headers or admin(app, db_id)), "Content-Type": "application/octet-stream",
               "Content-Encoding": "gzip"}
    return app.test_client().post(f"/{db_id}/import/yjs", data=gzip.compress(body),
                                  headers=headers)


def copy_objects(app, source: str, target: str) -> None:
    """data.ndjson from ``source`` into ``target``, as the CLI moves it."""
    client = app.test_client()
    lines = client.get(f"/{source}/export/stream", headers=admin(app, source)).data
    answer = client.post(f"/{target}/import/stream", data=lines, headers={
        **admin(app, target), "Content-Type": "application/x-ndjson"})
    assert answer.status_code == 200, answer.get_data(as_text=True)


@pytest.fixture
def target(app) -> str:
    services = app.extensions["dxc"]
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}, BOB: {}}})
    return created.url


def test_export_then_import_into_a_new_database_keeps_the_documents(app, device, target):
    alice = device()
    alice.sync()
    create(alice, "itm1")
    create(alice, "itm2")
    alice.sync(y=[u_c("itm1", 1), u_c("itm1", 2, OTHER_UPDATE), u_c("itm2", 3)])
    archive = export(app, alice.db_id)
    assert [(h["table"], h["prop"], h["key"], u) for h, u in parts(archive)] == [
        ("items", "content", "itm1", UPDATE),
        ("items", "content", "itm1", OTHER_UPDATE),
        ("items", "content", "itm2", UPDATE),
    ]
    assert export(app, alice.db_id, "?table=notes") == MAGIC
    assert export(app, alice.db_id, "?realmId=rlm-other") == MAGIC
    assert len(parts(export(app, alice.db_id, f"?realmId={ALICE}&table=items"))) == 3

    target_id = target.rsplit("/", 1)[1]
    early = Device(app.test_client(), target, "early")
    early.schema = alice.schema
    early.login(ALICE)
    early.sync()  # a device that was there before the import: it gets them as news
    copy_objects(app, alice.db_id, target_id)
    answer = post_yjs(app, target_id, archive)
    assert answer.get_json() == {"ok": True, "imported": 3, "skipped": 0, "orphaned": 0}
    again = post_yjs(app, target_id, archive).get_json()
    assert again == {"ok": True, "imported": 0, "skipped": 3, "orphaned": 0}
    assert stored_updates(app, early) == 3

    news = by_type(early.sync(), "u-s")
    assert sorted((m["k"], m["u"].data) for m in news) == sorted(
        [("itm1", UPDATE), ("itm1", OTHER_UPDATE), ("itm2", UPDATE)])
    late = Device(app.test_client(), target, "late")
    late.login(ALICE)
    documents = [r for r in records(download(late).get_data()) if r[0] == 3]
    assert documents == [(3, "itm1", UPDATE), (3, "itm1", OTHER_UPDATE), (3, "itm2", UPDATE)]
    bob = Device(app.test_client(), target, "bob")
    bob.login(BOB)
    assert [r for r in records(download(bob).get_data()) if r[0] == 3] == []


def test_documents_without_their_object_are_skipped(app, device, target):
    alice = device()
    alice.sync()
    create(alice, "itm1")
    alice.sync(y=[u_c("itm1", 1)])
    target_id = target.rsplit("/", 1)[1]
    answer = post_yjs(app, target_id, export(app, alice.db_id))
    assert answer.get_json() == {"ok": True, "imported": 0, "skipped": 0, "orphaned": 1}
    assert export(app, target_id) == MAGIC


def test_a_deleted_object_takes_its_document_out_of_the_export(app, device):
    alice = device()
    alice.sync()
    create(alice, "itm1")
    alice.sync(y=[u_c("itm1", 1)])
    alice.sync([alice.op("items", "delete", ["itm1"], "tx-del")])
    assert export(app, alice.db_id) == MAGIC


def test_export_since_a_revision_gives_the_later_updates_with_their_revisions(app, device):
    """``?since=`` (our extension, read by replicas): every stored update after the
    revision, by revision, with its ``rev``, ending with the revision reached."""
    alice = device()
    alice.sync()
    create(alice, "itm1")
    create(alice, "itm2")
    alice.sync(y=[u_c("itm1", 1)])  # revision 3 (the two objects took 1 and 2)
    alice.sync(y=[u_c("itm2", 2), u_c("itm1", 3, OTHER_UPDATE)])
    alice.sync([alice.op("items", "delete", ["itm2"], "tx-del")])
    head = stored_head(app, alice.db_id)

    everything = parts(export(app, alice.db_id, "?since=0"))
    assert [(h.get("key"), h.get("rev"), u) for h, u in everything[:-1]] == [
        ("itm1", 3, UPDATE), ("itm1", 4, OTHER_UPDATE),  # itm2's went with itm2
    ]
    assert everything[-1] == ({"end": head, "size": 0}, b"")
    later = parts(export(app, alice.db_id, "?since=3"))
    assert later == [everything[1], ({"end": head, "size": 0}, b"")]
    assert parts(export(app, alice.db_id, f"?since={head}")) == [({"end": head, "size": 0}, b"")]
    refused = app.test_client().get(f"/{alice.db_id}/export/yjs?since=x",
                                    headers=admin(app, alice.db_id))
    assert refused.status_code == 400 and refused.get_json()["error"] == "bad_request"


def stored_head(app, db_id: str) -> int:
    from dxc.storage.objects import ObjectStore

    services = app.extensions["dxc"]
    with services.router.shard_for(db_id).transaction(read_only=True) as connection:
        return ObjectStore(connection, db_id).current_revision()


def record(header: dict, update: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack(">I", len(text)) + text + update


GOOD = {"table": "items", "prop": "content", "key": "itm1", "size": len(UPDATE)}


@pytest.mark.parametrize("body, message", [
    (b"DCYJ\x00\x00\x00\x01" + b"x" * 10, "does not start with DXCYJS01"),
    (MAGIC + record(GOOD, UPDATE)[:-3], "ends in the middle"),
    (MAGIC + record(GOOD, UPDATE) + b"\x00\x00", "ends in the middle"),
    (MAGIC + struct.pack(">I", 10**9), "header of 1000000000 bytes"),
    (MAGIC + struct.pack(">I", 3) + b"{x}", "not JSON"),
    (MAGIC + record([1], b""), "not an object"),
    (MAGIC + record({**GOOD, "size": 0}, b""), "needs"),
    (MAGIC + record({**GOOD, "key": 5}, UPDATE), "needs"),
    (MAGIC + record({**GOOD, "table": ""}, UPDATE), "table is empty"),
    (MAGIC + record({**GOOD, "size": 2**40}, UPDATE), "an update of"),
])
def test_a_malformed_part_is_a_400_and_stores_nothing(app, device, body, message):
    alice = device()
    alice.sync()
    create(alice, "itm1")
    # A good update first: it is rolled back with the bad one.
    answer = post_yjs(app, alice.db_id, MAGIC + record(GOOD, UPDATE) + body[len(MAGIC):]
                      if body.startswith(MAGIC) else body)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert message in answer.get_json()["message"]
    assert stored_updates(app, alice) == 0


def test_an_empty_part_imports_nothing(app, device):
    alice = device()
    for body in (b"", MAGIC, b"DCYJ\x00\x00\x00\x01"):
        answer = post_yjs(app, alice.db_id, body)
        assert answer.get_json() == {"ok": True, "imported": 0, "skipped": 0, "orphaned": 0}


def test_export_and_import_need_global_read_and_write(app, device):
    alice = device()
    client = app.test_client()
    url = f"/{alice.db_id}"
    assert client.get(f"{url}/export/yjs").status_code == 401
    user_only = admin(app, alice.db_id, "ACCESS_DB")
    assert client.get(f"{url}/export/yjs", headers=user_only).status_code == 403
    assert post_yjs(app, alice.db_id, MAGIC, user_only).status_code == 403
    read_only = admin(app, alice.db_id, "ACCESS_DB", "GLOBAL_READ")
    assert client.get(f"{url}/export/yjs", headers=read_only).status_code == 200
    assert post_yjs(app, alice.db_id, MAGIC, read_only).status_code == 403
    assert client.get("/zzzunknown/export/yjs", headers=user_only).status_code in (401, 404)
