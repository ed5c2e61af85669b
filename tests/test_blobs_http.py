"""``PUT /<db>/blob/<id>`` and ``GET /<db>/blob/<ref>`` in-process, on SQLite and PostgreSQL.

Uploads as dexie-cloud-addon 4.4.14 sends them, reading checked by the realms
of the objects that hold a blob's ref, bad input, the size limit, orphan
collection. tests/test_blobs_s3.py runs the same store against S3 (moto);
tests/e2e/test_blobs_browser_e2e.py runs the real client in Chromium.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dxc import tson
from dxc.auth.tokens import AccessClaims
from dxc.blobs.collector import collect_orphans, collect_orphans_job, collection_job
from dxc.jobs import RQJobs
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.manage.maintenance import purge_database
from dxc.storage import schema
from dxc.storage.blobs import CHUNK
from dxc.storage.clock import utcnow
from tests.protocol_client import ALICE, BOB, Device, item
from tests.test_transfer_http import invoke

CAROL = "carol@demo.local"
REALM = "rlmShared1"


def blob_id() -> str:
    """An id like the client's ``newId()``: 24 b64lex characters (``|`` included)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz|"
    return "".join(secrets.choice(alphabet) for _ in range(23)) + "|"


class Db:
    """A database with Alice, Bob and Carol; requests as the addon sends them."""

    def __init__(self, app) -> None:
        self.app = app
        self.services = app.extensions["dxc"]
        created = databases.create_database(self.services)
        self.id, self.url = created.db_id, created.url
        import_document(self.services, self.id, {"demoUsers": {ALICE: {}, BOB: {}, CAROL: {}}})
        self.client = app.test_client()

    def device(self, user: str) -> Device:
        dev = Device(self.client, self.url, f"{user}-{secrets.token_hex(3)}")
        dev.login(user)
        return dev

    def token(self, user: str, *scopes: str) -> str:
        claims = AccessClaims(user, frozenset(scopes), "demo", user)
        return self.services.signer.issue(self.id, claims).token

    def put(self, token: str | None, body: bytes, ct: str = "image/png", bid: str | None = None,
            status: int = 200):
        bid = bid or blob_id()
        headers = {"Content-Type": ct}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.put(f"/{self.id}/blob/{bid}?ct={ct}", data=body, headers=headers)
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()

    def get(self, token: str | None, ref: str, status: int = 200):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.get(f"/{self.id}/blob/{ref}", headers=headers)
        assert response.status_code == status, response.get_data(as_text=True)
        return response

    def rows(self, table) -> int:
        with self.services.router.shard(1).transaction(read_only=True) as connection:
            return connection.scalar(
                select(func.count()).select_from(table).where(table.c.db_id == self.id))


@pytest.fixture
def db(app) -> Db:
    return Db(app)


def blob_ref(ref: str, size: int, bt: str = "Blob", **extra) -> dict:
    return {"_bt": bt, "ref": ref, "size": size, **extra}


def test_an_upload_is_read_back_byte_for_byte_with_its_content_type(db):
    alice = db.device(ALICE)
    body = secrets.token_bytes(3 * CHUNK + 17)  # several chunks and a short last one
    bid = blob_id()
    answer = db.put(alice.token, body, ct="image/png", bid=bid)
    assert answer == {"ref": f"1:{bid}"}
    response = db.get(alice.token, answer["ref"])  # the uploader, before any object refers to it
    assert response.data == body
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Length"] == str(len(body))
    assert "immutable" in response.headers["Cache-Control"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert db.rows(schema.blob_chunks) == 4


def test_reading_follows_the_realms_of_the_objects_that_hold_the_ref(db):
    alice, bob, carol = db.device(ALICE), db.device(BOB), db.device(CAROL)
    ref = db.put(alice.token, b"secret picture", ct="image/jpeg")["ref"]
    db.get(bob.token, ref, status=403)  # not referenced yet: only the uploader
    pic = blob_ref(ref, 14, ct="image/jpeg")
    invite = {"id": "mmbBob", "realmId": REALM, "owner": ALICE, "email": BOB, "invite": True,
              "permissions": {"add": ["items"]}}
    answer = alice.sync([
        alice.op("realms", "insert", [REALM], "share",
                 values=[{"realmId": REALM, "owner": ALICE, "name": "album"}]),
        alice.op("items", "insert", ["itmA"], "share",
                 values=[item("itmA", realm=REALM, pic=[pic], _hasBlobRefs=1)]),
        alice.op("members", "insert", ["mmbBob"], "share", values=[invite]),
    ])
    assert answer["rejections"] == []
    db.get(bob.token, ref, status=403)  # invited, not yet a member
    when = tson.Date("2001-01-01T00:00:00.000Z")
    bob.sync([bob.op("members", "update", ["mmbBob"], "accept", changeSpecs=[{"accepted": when}])])
    assert bob.state["items"]["itmA"]["pic"] == [pic], "the BlobRef travels unchanged"
    assert db.get(bob.token, ref).data == b"secret picture"
    db.get(carol.token, ref, status=403)
    db.get(None, ref, status=403)  # anonymous: only rlm-public
    assert db.get(db.token(CAROL, "ACCESS_DB", "GLOBAL_READ"), ref).data == b"secret picture"
    # The object drops the ref: its realm no longer opens the blob (the index row is stale).
    alice.sync([alice.op("items", "update", ["itmA"], "drop", changeSpecs=[{"pic": None}])])
    db.get(bob.token, ref, status=403)
    db.get(alice.token, ref, status=200)  # unreferenced again: the uploader


def test_a_blob_in_the_public_realm_needs_no_token(db):
    alice = db.device(ALICE)
    ref = db.put(alice.token, b"{}", ct="application/json")["ref"]
    admin = Device(db.client, db.url, "admin")
    admin.token = db.token(ALICE, "ACCESS_DB", "GLOBAL_READ", "GLOBAL_WRITE")
    admin.sync([admin.op("items", "insert", ["itmP"], "pub",
                         values=[item("itmP", realm="rlm-public", doc=blob_ref(ref, 2))])])
    assert db.get(None, ref).data == b"{}"


def test_bad_input_is_a_clear_json_4xx(db, make_app):
    alice = db.device(ALICE)
    for bad in ("short", "x" * 65, "has.dot_in_it_123", "%C3%A9" * 10):
        answer = db.put(alice.token, b"x", bid=bad, status=400)
        assert "blob id" in answer["message"]
    db.put(None, b"x", status=401)
    db.put("not-a-token", b"x", status=401)
    db.put(alice.token, b"x", ct="text/\x01plain", status=400)
    for bad in ("2:" + blob_id(), blob_id(), "1:bad.id"):
        assert db.get(alice.token, bad, status=400).get_json()["error"] == "bad_request"
    assert db.get(alice.token, "1:" + blob_id(), status=404).get_json()["error"] == "not_found"
    bid = blob_id()
    db.put(alice.token, b"first", bid=bid)
    assert db.put(db.device(BOB).token, b"other", bid=bid, status=409)["error"] == "conflict"
    assert db.get(alice.token, f"1:{bid}").data == b"first"
    response = db.client.put(f"/zunknown/blob/{blob_id()}", data=b"x",
                             headers={"Authorization": f"Bearer {alice.token}"})
    assert response.status_code == 404


def test_oversize_uploads_are_refused_with_413_and_leave_nothing(make_app):
    db = Db(make_app(max_blob_bytes=1000))
    alice = db.device(ALICE)
    answer = db.put(alice.token, b"x" * 1001, status=413)
    assert "1000 bytes" in answer["message"] and answer["error"] == "request_entity_too_large"
    # Without a Content-Length (chunked), the limit holds while the body is read.
    response = db.client.put(
        f"/{db.id}/blob/{blob_id()}", data=b"y" * 1500,
        headers={"Authorization": f"Bearer {alice.token}"},
        environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
    )
    assert response.status_code == 413, response.get_data(as_text=True)
    db.put(alice.token, b"x" * 1000)
    assert db.rows(schema.blobs) == 1


def test_orphans_are_collected_after_the_grace_period(db):
    alice = db.device(ALICE)
    kept, dropped, orphan = (db.put(alice.token, b"k" * 10)["ref"] for _ in range(3))
    alice.sync([
        alice.op("items", "insert", ["itmK", "itmD"], "t1", values=[
            item("itmK", doc=blob_ref(kept, 10), _hasBlobRefs=1),
            item("itmD", doc=blob_ref(dropped, 10), _hasBlobRefs=1),
        ]),
    ])
    alice.sync([alice.op("items", "delete", ["itmD"], "t2")])
    assert collect_orphans(db.services.blobs, db.id) == 0, "all are younger than the grace"
    later = utcnow() + timedelta(seconds=db.services.settings.blob_orphan_grace + 1)
    assert collect_orphans(db.services.blobs, db.id, now=later) == 2
    db.get(alice.token, kept)
    db.get(alice.token, dropped, status=404)
    db.get(alice.token, orphan, status=404)
    assert db.rows(schema.blobs) == 1 and db.rows(schema.blob_chunks) == 1


def test_a_hard_deleted_database_takes_its_blobs_along(db):
    alice = db.device(ALICE)
    ref = db.put(alice.token, b"bytes")["ref"]
    alice.sync([alice.op("items", "insert", ["itmX"], "t",
                         values=[item("itmX", f=blob_ref(ref, 5))])])
    assert db.rows(schema.blob_refs) == 1
    purge_database(db.services, db.id)
    assert [db.rows(t) for t in (schema.blobs, schema.blob_chunks, schema.blob_refs)] == [0, 0, 0]


def test_an_upload_schedules_one_collection_per_hour_and_the_cli_collects_now(make_app):
    db = Db(make_app(blob_orphan_grace=1))
    queued = []
    db.services.blobs.jobs = Recorder(queued)
    alice = db.device(ALICE)
    orphan = db.put(alice.token, b"o")["ref"]
    db.put(alice.token, b"p")
    assert len(queued) == 1, "the second upload within the hour schedules nothing"
    fn, args = queued[0]
    fn(*args)  # the in-process job: both blobs are younger than a second
    assert db.rows(schema.blobs) == 2
    time.sleep(1.1)
    result = invoke(db.app, ["dxc", "collect-blobs", "--all"])
    assert result.exit_code == 0, result.output
    assert "Removed 2 orphaned blob(s)" in result.output
    db.get(alice.token, orphan, status=404)


def test_with_redis_the_job_is_found_by_name_in_a_worker(db):
    db.services.blobs.jobs = RQJobs.__new__(RQJobs)  # only its type matters here
    fn, arg = collection_job(db.services.blobs, db.id)
    assert (fn, arg) == (collect_orphans_job, db.id)


class Recorder:
    def __init__(self, calls: list) -> None:
        self.calls = calls

    def enqueue(self, fn, *args) -> None:
        self.calls.append((fn, args))
