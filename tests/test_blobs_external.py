"""Blob bytes in an external store, each run locally: an S3 bucket (moto's server) and an
Azure Blob container (Azurite), on SQLite and PostgreSQL.

The same endpoints as tests/test_blobs_http.py with ``DXC_BLOB_S3_*`` or
``DXC_BLOB_AZURE_*`` set: the bytes go to the store (none to ``blob_chunks``),
come back byte for byte, a failed upload leaves no record and is a 503 with
Retry-After, and a collected orphan leaves the store too.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from datetime import timedelta
from typing import Any

import boto3
import pytest
from azure.storage.blob import BlobServiceClient

from dxc.blobs.collector import collect_orphans
from dxc.config import AzureSettings, S3Settings
from dxc.storage import schema
from dxc.storage.blob_azure import IN_AZURE
from dxc.storage.blob_s3 import IN_S3
from dxc.storage.blobs import BlobIndex
from dxc.storage.clock import utcnow
from tests.local_store import (  # noqa: F401
    azurite_connection_string,
    azurite_endpoint,
    s3_endpoint,
)
from tests.protocol_client import ALICE, item
from tests.test_blobs_http import Db, blob_id, blob_ref

PREFIX = "test/"


class Store(ABC):
    """One store as the test sees it, beside the server: its objects, and a way to break it."""

    location: str

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The app's settings that point it at this store."""

    @abstractmethod
    def keys(self) -> list[str]: ...

    @abstractmethod
    def content_type(self, key: str) -> str: ...

    @abstractmethod
    def remove(self, key: str) -> None: ...

    @abstractmethod
    def break_down(self) -> None:
        """Delete the bucket or container: every write fails from now on."""


class S3Bucket(Store):
    location = IN_S3

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.client = boto3.client("s3", endpoint_url=endpoint)
        self.name = f"dxc-blobs-{secrets.token_hex(4)}"
        self.client.create_bucket(Bucket=self.name)

    def settings(self) -> dict[str, Any]:
        return {"blob_s3": S3Settings(self.name, endpoint_url=self.endpoint, prefix=PREFIX)}

    def keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name).get("Contents", [])
        return [entry["Key"] for entry in listed]

    def content_type(self, key: str) -> str:
        return self.client.get_object(Bucket=self.name, Key=key)["ContentType"]

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)

    def break_down(self) -> None:
        self.client.delete_bucket(Bucket=self.name)


class AzureContainer(Store):
    location = IN_AZURE

    def __init__(self, endpoint: str) -> None:
        self.connection_string = azurite_connection_string(endpoint)
        self.name = f"dxc-blobs-{secrets.token_hex(4)}"
        service = BlobServiceClient.from_connection_string(self.connection_string)
        self.container = service.create_container(self.name)

    def settings(self) -> dict[str, Any]:
        return {"blob_azure": AzureSettings(self.name, self.connection_string, prefix=PREFIX)}

    def keys(self) -> list[str]:
        return list(self.container.list_blob_names())

    def content_type(self, key: str) -> str:
        properties = self.container.get_blob_client(key).get_blob_properties()
        return properties.content_settings.content_type

    def remove(self, key: str) -> None:
        self.container.delete_blob(key)

    def break_down(self) -> None:
        self.container.delete_container()


@pytest.fixture(params=["s3", "azure"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Store:
    if request.param == "s3":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return S3Bucket(request.getfixturevalue("s3_endpoint"))
    return AzureContainer(request.getfixturevalue("azurite_endpoint"))


@pytest.fixture
def db(make_app, store: Store) -> Db:
    return Db(make_app(**store.settings()))


def test_bytes_go_to_the_store_and_come_back(db, store):
    alice = db.device(ALICE)
    # Above boto3's multipart threshold and many of Azure's blocks and ranges.
    body = secrets.token_bytes(6 * 1024 * 1024 + 5)
    bid = blob_id()
    ref = db.put(alice.token, body, ct="video/mp4", bid=bid)["ref"]
    key = f"{PREFIX}{db.id}/{bid}"
    assert store.keys() == [key]
    assert db.rows(schema.blob_chunks) == 0
    with db.services.router.shard_for(db.id).transaction(read_only=True) as connection:
        assert BlobIndex(connection, db.id).get(bid).location == store.location
    response = db.get(alice.token, ref)
    assert response.data == body and response.headers["Content-Type"] == "video/mp4"
    assert store.content_type(key) == "video/mp4"
    db.put(alice.token, b"again", bid=bid, status=409)
    assert db.get(alice.token, ref).data == body, "a taken id never overwrites the stored object"


def test_a_failed_upload_to_the_store_leaves_no_record(db, store):
    alice = db.device(ALICE)
    store.break_down()  # every put now fails
    response = db.client.put(f"/{db.id}/blob/{blob_id()}", data=b"x",
                             headers={"Authorization": f"Bearer {alice.token}"})
    assert response.status_code == 503 and response.get_json()["error"] == "unavailable"
    assert response.headers["Retry-After"]
    assert db.rows(schema.blobs) == 0


def test_collected_orphans_leave_the_store(db, store):
    alice = db.device(ALICE)
    kept, orphan = (db.put(alice.token, b"bytes")["ref"] for _ in range(2))
    alice.sync([alice.op("items", "insert", ["itmK"], "t",
                         values=[item("itmK", doc=blob_ref(kept, 5))])])
    later = utcnow() + timedelta(seconds=db.services.settings.blob_orphan_grace + 1)
    assert collect_orphans(db.services.blobs, db.id, now=later) == 1
    assert store.keys() == [f"{PREFIX}{db.id}/{kept.split(':')[1]}"]
    db.get(alice.token, orphan, status=404)


def test_a_blob_missing_from_the_store_is_a_503_before_any_byte(db, store):
    alice = db.device(ALICE)
    bid = blob_id()
    ref = db.put(alice.token, b"bytes", bid=bid)["ref"]
    store.remove(f"{PREFIX}{db.id}/{bid}")
    response = db.get(alice.token, ref, status=503)
    assert response.get_json()["error"] == "unavailable" and response.headers["Retry-After"]
