"""Blob offloading with the real dexie-cloud-addon 4.4.14 in headless Chromium (issue 16).

One browser (a device of Alice) stores an item holding a 5 MB ``Blob`` and a
200 000 character string; the addon uploads both (``PUT /<db>/blob/<id>``)
and syncs the item with BlobRefs in their place. A second browser (another
device of Alice, fresh IndexedDB) pulls the item, and the addon downloads both
(``GET /<db>/blob/<ref>``) and gives them back byte-identical, as a ``Blob``
of the same type and a string. Bob, who has no access to Alice's realm, gets
403 for the same URLs. Against the gunicorn + gevent server, on SQLite and
PostgreSQL. Needs what tests/e2e/test_whitelist_browser_e2e.py needs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from dxc.auth.tokens import AccessClaims
from dxc.storage import schema
from tests.e2e.site import static_site
from tests.e2e.test_whitelist_browser_e2e import run_page

ALICE = "alice@demo.local"
BOB = "bob@demo.local"
BLOB_BYTES = 5 * 1024 * 1024
TEXT_LENGTH = 200_000


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"REDIS_URL": ""}  # the orphan collection an upload schedules runs in-process


@pytest.fixture
def page_port(tmp_path: Path) -> Iterator[int]:
    with static_site(tmp_path / "site", "blob_page.html") as port:
        yield port


def stored_item(server, db_id: str) -> str:
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        return connection.scalars(select(schema.objects.c.value).where(
            schema.objects.c.db_id == db_id, schema.objects.c.tbl == "items",
        )).one()


def read_back(page: str, db_url: str, title: str, wrote: dict, blob_bytes: int,
              text_length: int) -> None:
    """A fresh browser device of Alice at ``db_url`` reads the item ``title`` back as
    ``wrote`` (what the writing page reported): the Blob and the string identical."""
    read = run_page(page, databaseUrl=db_url, userId=ALICE, title=title)
    assert read.get("error") is None and read["found"], (title, read)
    assert read["pic"] == {"isBlob": True, "sha": wrote["pic"]["sha"],
                           "size": blob_bytes, "type": "image/png"}
    assert read["text"] == {"isString": True, "sha": wrote["text"]["sha"],
                            "length": text_length}


def blob_downloads(server, db_id: str) -> int:
    """How many blobs of ``db_id`` the server's log shows downloaded (200)."""
    return sum(1 for line in server.log().splitlines()
               if f"GET /{db_id}/blob/1:" in line and " 200 " in line)


def token(server, db_id: str, user: str) -> str:
    claims = AccessClaims(user, frozenset({"ACCESS_DB"}), "demo", user, None)
    return server.services.signer.issue(db_id, claims).token


def test_blobs_are_offloaded_synced_to_another_device_and_read_back(server, page_port):
    offload_sync_and_read_back(server, page_port)


def offload_sync_and_read_back(server, page_port: int) -> dict:
    """The scenario; the server's stored object as it holds it (BlobRefs)."""
    url = server.create_database(demo_users=(ALICE, BOB))
    db_id = url.rsplit("/", 1)[1]
    page = f"http://127.0.0.1:{page_port}/"

    wrote = run_page(page, databaseUrl=url, userId=ALICE, title="holiday",
                     write={"blobBytes": BLOB_BYTES, "textLength": TEXT_LENGTH})
    assert wrote.get("error") is None, wrote
    assert wrote["pic"]["size"] == BLOB_BYTES and wrote["text"]["length"] == TEXT_LENGTH

    # The server holds BlobRefs, not the bytes, in the object.
    text = stored_item(server, db_id)
    assert len(text) < 2000, "nothing was sent inline"
    value = json.loads(text)
    assert value["_hasBlobRefs"] == 1
    pic, long_text = value["pic"], value["text"]
    assert (pic["_bt"], pic["size"], pic["ct"]) == ("Blob", BLOB_BYTES, "image/png")
    assert (long_text["_bt"], long_text["size"]) == ("string", TEXT_LENGTH)
    assert pic["ref"].startswith("1:") and long_text["ref"].startswith("1:")

    # Another device of Alice: a fresh browser pulls the item and reads both back.
    read_back(page, url, "holiday", wrote, BLOB_BYTES, TEXT_LENGTH)
    assert blob_downloads(server, db_id) >= 2, (
        "the second device downloaded both blobs from the server")

    # Byte-identical on the server too; and nobody outside Alice's realm reads them.
    alice, bob = token(server, db_id, ALICE), token(server, db_id, BOB)
    answer = requests.get(f"{url}/blob/{pic['ref']}", timeout=30,
                          headers={"Authorization": f"Bearer {alice}"})
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/png"
    assert hashlib.sha256(answer.content).hexdigest() == wrote["pic"]["sha"]
    for ref in (pic["ref"], long_text["ref"]):
        refused = requests.get(f"{url}/blob/{ref}", timeout=30,
                               headers={"Authorization": f"Bearer {bob}"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "forbidden"
        assert requests.get(f"{url}/blob/{ref}", timeout=30).status_code == 403  # anonymous
    assert "Traceback" not in server.log()
    return value
