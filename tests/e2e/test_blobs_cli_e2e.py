"""Blobs through the real ``dexie-cloud`` CLI 3.0.7: ``export`` puts a ``blobs.dcbl`` into the
zip, ``import`` of that zip into another database brings the blobs back, readable through the
objects that refer to them. On SQLite and PostgreSQL, against the gunicorn server."""

from __future__ import annotations

import hashlib
import secrets
import zipfile

import requests

from dxc.auth.tokens import AccessClaims
from dxc.manage.importer import import_document
from tests.e2e.test_transfer_cli_e2e import Folder

ALICE = "alice@demo.local"
BOB = "bob@demo.local"


def token(server, db_id: str, user: str) -> str:
    claims = AccessClaims(user, frozenset({"ACCESS_DB"}), "demo", user, None)
    return server.services.signer.issue(db_id, claims).token


def test_cli_export_and_import_carry_the_blobs(server, tmp_path):
    source = Folder(server, tmp_path / "source")
    import_document(server.services, source.db_id, {"demoUsers": {ALICE: {}, BOB: {}}})
    body = secrets.token_bytes(300_000)
    alice = {"Authorization": f"Bearer {token(server, source.db_id, ALICE)}"}
    blob_id = "0P021Ft0sWCdJNANkE46Aq1|"
    put = requests.put(f"{source.url}/blob/{blob_id}?ct=image%2Fwebp", data=body, timeout=30,
                       headers={**alice, "Content-Type": "image/webp"})
    assert put.status_code == 200, put.text
    ref = put.json()["ref"]
    import_document(server.services, source.db_id, {"data": {ALICE: {"items": {"itmPic": {
        "title": "pic", "owner": ALICE, "_hasBlobRefs": 1,
        "pic": {"_bt": "Blob", "ref": ref, "size": len(body), "ct": "image/webp"}}}}}})
    orphan = requests.put(f"{source.url}/blob/{'x' * 24}", data=b"never referenced", timeout=30,
                          headers=alice)
    assert orphan.status_code == 200

    source.cli("export", "all.zip")
    with zipfile.ZipFile(source.path / "all.zip") as archive:
        assert sorted(archive.namelist()) == ["blobs.dcbl", "data.ndjson"]
        assert archive.read("blobs.dcbl").startswith(b"DXCBLOB1")

    target = Folder(server, tmp_path / "target")
    import_document(server.services, target.db_id, {"demoUsers": {ALICE: {}, BOB: {}}})
    (target.path / "all.zip").write_bytes((source.path / "all.zip").read_bytes())
    output = target.cli("import", "all.zip")
    assert "Importing blobs.dcbl" in output
    for user, status in ((ALICE, 200), (BOB, 403)):
        answer = requests.get(f"{target.url}/blob/{ref}", timeout=30, headers={
            "Authorization": f"Bearer {token(server, target.db_id, user)}"})
        assert answer.status_code == status, answer.text
    answer = requests.get(f"{target.url}/blob/{ref}", timeout=30, headers={
        "Authorization": f"Bearer {token(server, target.db_id, ALICE)}"})
    assert hashlib.sha256(answer.content).digest() == hashlib.sha256(body).digest()
    assert answer.headers["Content-Type"] == "image/webp"
    target.cli("import", "all.zip")  # again: the blobs are there already and are skipped
    assert "Traceback" not in server.log()
