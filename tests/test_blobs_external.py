"""Blob bytes in an external store, each run locally: an S3 bucket (moto's server) and an
Azure Blob container (Azurite), on SQLite and PostgreSQL.

The same endpoints as tests/test_blobs_http.py with ``DXC_BLOB_S3_*`` or
``DXC_BLOB_AZURE_*`` set: the bytes go to the store (none to ``blob_chunks``),
come back byte for byte, a failed upload leaves no record and is a 503 with
Retry-After, and a collected orphan leaves the store too.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from dxc.blobs.collector import collect_orphans
from dxc.config import AzureSettings
from dxc.storage import schema
from dxc.storage.blobs import BlobIndex
from dxc.storage.clock import utcnow
from tests.local_store import (  # noqa: F401
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    PREFIX,
    AzureContainer,
    Store,
    azurite_endpoint,
    s3_endpoint,
    store,
)
from tests.protocol_client import ALICE, item
from tests.test_blobs_http import Db, blob_id, blob_ref


@pytest.fixture
def db(make_app, store: Store) -> Db:  # noqa: F811
    return Db(make_app(**store.settings()))


def test_bytes_go_to_the_store_and_come_back(db, store):  # noqa: F811
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


def test_a_failed_upload_to_the_store_leaves_no_record(db, store):  # noqa: F811
    alice = db.device(ALICE)
    store.break_down()  # every put now fails
    response = db.client.put(f"/{db.id}/blob/{blob_id()}", data=b"x",
                             headers={"Authorization": f"Bearer {alice.token}"})
    assert response.status_code == 503 and response.get_json()["error"] == "unavailable"
    assert response.headers["Retry-After"]
    assert db.rows(schema.blobs) == 0


def test_collected_orphans_leave_the_store(db, store):  # noqa: F811
    alice = db.device(ALICE)
    kept, orphan = (db.put(alice.token, b"bytes")["ref"] for _ in range(2))
    alice.sync([alice.op("items", "insert", ["itmK"], "t",
                         values=[item("itmK", doc=blob_ref(kept, 5))])])
    later = utcnow() + timedelta(seconds=db.services.settings.blob_orphan_grace + 1)
    assert collect_orphans(db.services.blobs, db.id, now=later) == 1
    assert store.keys() == [f"{PREFIX}{db.id}/{kept.split(':')[1]}"]
    db.get(alice.token, orphan, status=404)


def test_a_blob_missing_from_the_store_is_a_503_before_any_byte(db, store):  # noqa: F811
    alice = db.device(ALICE)
    bid = blob_id()
    ref = db.put(alice.token, b"bytes", bid=bid)["ref"]
    store.remove(f"{PREFIX}{db.id}/{bid}")
    response = db.get(alice.token, ref, status=503)
    assert response.get_json()["error"] == "unavailable" and response.headers["Retry-After"]


def test_a_sas_for_the_container_is_all_the_server_needs(make_app, azurite_endpoint):  # noqa: F811
    """docs/deploy-azure.md advises a SAS limited to the container (racwd), not the key."""
    container = AzureContainer(azurite_endpoint)
    sas = generate_container_sas(
        AZURITE_ACCOUNT, container.name, account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, add=True, create=True, write=True,
                                           delete=True),
        expiry=utcnow() + timedelta(hours=1),
    )
    connection_string = f"BlobEndpoint={azurite_endpoint};SharedAccessSignature={sas}"
    db = Db(make_app(blob_azure=AzureSettings(container.name, connection_string)))
    alice = db.device(ALICE)
    body = secrets.token_bytes(1536 * 1024)
    ref = db.put(alice.token, body)["ref"]
    assert db.get(alice.token, ref).data == body
    later = utcnow() + timedelta(seconds=db.services.settings.blob_orphan_grace + 1)
    assert collect_orphans(db.services.blobs, db.id, now=later) == 1
    assert container.keys() == []
