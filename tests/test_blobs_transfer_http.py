"""``GET /<db>/export/blobs`` and ``POST /<db>/import/blobs`` in-process (the ``blobs.dcbl``
part of a CLI export zip), on SQLite and PostgreSQL. The real CLI: tests/e2e/test_blobs_cli_e2e.py.
"""

from __future__ import annotations

import gzip
import json
import struct

import pytest

from dxc.manage.blob_archive import MAGIC
from dxc.storage import schema
from tests import archive_parts
from tests.protocol_client import ALICE, item
from tests.test_blobs_http import Db, blob_id, blob_ref

ADMIN = ("ACCESS_DB", "GLOBAL_READ", "GLOBAL_WRITE")


@pytest.fixture
def db(app) -> Db:
    return Db(app)


def admin(db: Db) -> dict[str, str]:
    return {"Authorization": f"Bearer {db.token(ALICE, *ADMIN)}"}


def export(db: Db, query: str = "") -> bytes:
    response = db.client.get(f"/{db.id}/export/blobs{query}", headers=admin(db))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/octet-stream"
    return response.data


def records(archive: bytes) -> list[tuple[dict, bytes]]:
    return archive_parts.records(archive, MAGIC)


def post(db: Db, body: bytes, gz: bool = True):
    headers = {**admin(db), "Content-Type": "application/octet-stream"}
    if gz:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    return db.client.post(f"/{db.id}/import/blobs", data=body, headers=headers)


def test_export_filters_and_import_round_trip(db, make_app):
    alice = db.device(ALICE)
    refs = [db.put(alice.token, bytes([n]) * (1000 + n), ct=f"image/x{n}")["ref"] for n in range(3)]
    alice.sync([alice.op("items", "insert", ["itm1"], "t",
                         values=[item("itm1", a=blob_ref(refs[0], 1000))])])
    everything = export(db)
    assert [(h["id"], h["ct"], len(b)) for h, b in records(everything)] == sorted(
        (r[2:], f"image/x{n}", 1000 + n) for n, r in enumerate(refs))
    assert [h["id"] for h, _ in records(export(db, f"?realmId={ALICE}"))] == [refs[0][2:]]
    assert [h["id"] for h, _ in records(export(db, f"?blobIds={refs[2][2:]},unknown"))] == [
        refs[2][2:]]
    assert export(db, "?realmId=rlm-nothing") == MAGIC

    other = Db(make_app())
    answer = post(other, everything)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"ok": True, "imported": 3, "skipped": 0}
    assert post(other, everything).get_json() == {"ok": True, "imported": 0, "skipped": 3}
    assert records(export(other)) == records(everything)


def test_bad_archives_are_refused_and_store_nothing(db):
    good_header = json.dumps({"id": blob_id(), "ct": "a/b", "size": 10, "uploader": ALICE})
    record = struct.pack(">I", len(good_header)) + good_header.encode()
    for body, message in (
        (b"NOTMAGIC" + record + b"x" * 10, "DXCBLOB1"),
        (MAGIC + record + b"x" * 5, "ends in the middle"),
        (MAGIC + struct.pack(">I", 10**6), "header of"),
        (MAGIC + struct.pack(">I", 3) + b"{x}", "not JSON"),
        (MAGIC + struct.pack(">I", 2) + b"{}", "needs"),
    ):
        answer = post(db, body)
        assert answer.status_code == 400, answer.get_data(as_text=True)
        assert message in answer.get_json()["message"]
    bad_id = json.dumps({"id": "../x", "ct": "a/b", "size": 1, "uploader": ALICE})
    answer = post(db, MAGIC + struct.pack(">I", len(bad_id)) + bad_id.encode() + b"x")
    assert answer.status_code == 400 and "blob id" in answer.get_json()["message"]
    assert db.rows(schema.blobs) == 0
    for empty in (b"", b"DCBL\x00\x00\x00\x01", MAGIC):  # 8 bytes or less: nothing in it
        assert post(db, empty, gz=False).get_json()["imported"] == 0
