"""Blob bytes in an S3-compatible bucket: moto's server run locally, on SQLite and PostgreSQL.

The same endpoints as tests/test_blobs_http.py with ``DXC_BLOB_S3_*`` set:
the bytes go to the bucket (none to ``blob_chunks``), come back byte for
byte, a failed upload leaves no record, and a collected orphan leaves the
bucket too.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest
import requests

from dxc.blobs.collector import collect_orphans
from dxc.config import S3Settings
from dxc.storage import schema
from dxc.storage.blobs import IN_S3, BlobIndex
from dxc.storage.clock import utcnow
from tests.conftest import free_port
from tests.protocol_client import ALICE, item
from tests.test_blobs_http import Db, blob_id, blob_ref

BUCKET = "dxc-blobs"
PREFIX = "test/"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free port, for this module's tests."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(endpoint, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    name = f"{BUCKET}-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=name)
    return s3, name


@pytest.fixture
def db(make_app, bucket, s3_endpoint) -> Db:
    _, name = bucket
    return Db(make_app(blob_s3=S3Settings(name, endpoint_url=s3_endpoint, prefix=PREFIX)))


def keys_in(bucket) -> list[str]:
    s3, name = bucket
    return [entry["Key"] for entry in s3.list_objects_v2(Bucket=name).get("Contents", [])]


def test_bytes_go_to_the_bucket_and_come_back(db, bucket):
    alice = db.device(ALICE)
    body = secrets.token_bytes(6 * 1024 * 1024 + 5)  # above boto3's multipart threshold
    bid = blob_id()
    ref = db.put(alice.token, body, ct="video/mp4", bid=bid)["ref"]
    assert keys_in(bucket) == [f"{PREFIX}{db.id}/{bid}"]
    assert db.rows(schema.blob_chunks) == 0
    with db.services.router.shard_for(db.id).transaction(read_only=True) as connection:
        assert BlobIndex(connection, db.id).get(bid).location == IN_S3
    response = db.get(alice.token, ref)
    assert response.data == body and response.headers["Content-Type"] == "video/mp4"
    s3, name = bucket
    stored = s3.get_object(Bucket=name, Key=f"{PREFIX}{db.id}/{bid}")
    assert stored["ContentType"] == "video/mp4"
    db.put(alice.token, b"again", bid=bid, status=409)
    assert db.get(alice.token, ref).data == body, "a taken id never overwrites the bucket's object"


def test_a_failed_upload_to_the_bucket_leaves_no_record(db, bucket):
    alice = db.device(ALICE)
    s3, name = bucket
    s3.delete_bucket(Bucket=name)  # every put now fails
    response = db.client.put(f"/{db.id}/blob/{blob_id()}", data=b"x",
                             headers={"Authorization": f"Bearer {alice.token}"})
    assert response.status_code == 503 and response.get_json()["error"] == "unavailable"
    assert response.headers["Retry-After"]
    assert db.rows(schema.blobs) == 0


def test_collected_orphans_leave_the_bucket(db, bucket):
    alice = db.device(ALICE)
    kept, orphan = (db.put(alice.token, b"bytes")["ref"] for _ in range(2))
    alice.sync([alice.op("items", "insert", ["itmK"], "t",
                         values=[item("itmK", doc=blob_ref(kept, 5))])])
    later = utcnow() + timedelta(seconds=db.services.settings.blob_orphan_grace + 1)
    assert collect_orphans(db.services.blobs, db.id, now=later) == 1
    assert keys_in(bucket) == [f"{PREFIX}{db.id}/{kept.split(':')[1]}"]
    db.get(alice.token, orphan, status=404)


def test_a_blob_missing_from_the_bucket_is_a_503_before_any_byte(db, bucket):
    alice = db.device(ALICE)
    bid = blob_id()
    ref = db.put(alice.token, b"bytes", bid=bid)["ref"]
    s3, name = bucket
    s3.delete_object(Bucket=name, Key=f"{PREFIX}{db.id}/{bid}")
    assert db.get(alice.token, ref, status=503).get_json()["error"] == "unavailable"

