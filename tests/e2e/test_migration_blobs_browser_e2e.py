"""Blobs move with their database (issue 14), written and read by the real client.

A device of Alice (dexie-cloud-addon in headless Chromium, browser/blob_page.html)
stores at the source an item holding a ``Blob`` and a string long enough to be
offloaded; ``flask dxc start-replication`` copies the database to a second
installation; once in sync, another device stores a second such item, which
the copy takes while it follows the source; ``redirect`` hands the database
over. A fresh device of Alice given the target's URL (the republished app)
reads both items back byte-identical, downloading the blobs from the target.
The target holds the source's blob rows, and Bob gets 403 for them there.
Needs what tests/e2e/test_whitelist_browser_e2e.py needs; SQLite and PostgreSQL.
"""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import select

from dxc.protocol.blob_refs import blob_ids_in_text
from dxc.storage import schema
from tests.conftest import RunningServer
from tests.e2e.test_blobs_browser_e2e import (  # noqa: F401 (page_port: a fixture)
    blob_downloads,
    page_port,
    read_back,
    token,
)
from tests.e2e.test_whitelist_browser_e2e import run_page
from tests.protocol_client import ALICE, BOB
from tests.test_replication_server import (  # noqa: F401 (fixtures)
    progress,
    redirect,
    server_env,
    source_db,
    start_replication,
    target,
    wait_in_sync,
)

pytestmark = pytest.mark.e2e

BLOB_BYTES = 300 * 1024
#: Above the addon's default offloading threshold for strings (32 768 characters).
TEXT_LENGTH = 40_000
WRITE = {"blobBytes": BLOB_BYTES, "textLength": TEXT_LENGTH}


def referred_blobs(server: RunningServer, db_url: str) -> dict[str, tuple]:
    """The blobs the items hold refs of: id -> (size, content type, uploader). The addon
    (4.4.14) uploads a new item's blobs twice and sends the item with each set of refs in
    one sync: the first set are orphans, which the replication leaves behind."""
    db_id = db_url.rsplit("/", 1)[1]
    blobs, objects = schema.blobs.c, schema.objects.c
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        values = connection.scalars(select(objects.value).where(
            objects.db_id == db_id, objects.tbl == "items", objects.deleted.is_(False),
        )).all()
        held = {blob_id for value in values for blob_id in blob_ids_in_text(value)}
        found = connection.execute(select(
            blobs.blob_id, blobs.size, blobs.content_type, blobs.uploader,
        ).where(blobs.db_id == db_id, blobs.blob_id.in_(held))).all()
    assert len(found) == len(held), "an item refers to a blob that is not there"
    return {row.blob_id: tuple(row[1:]) for row in found}


def test_a_real_clients_blobs_are_read_back_at_the_target_after_the_move(
    server, target, mailbox, source_db, page_port  # noqa: F811 (fixtures)
):
    page = f"http://127.0.0.1:{page_port}/"
    written = {"before": run_page(page, databaseUrl=source_db, userId=ALICE,
                                  title="before", write=WRITE)}
    target_url = start_replication(target, mailbox, source_db)
    wait_in_sync(target, target_url)
    # Written while the copy follows the source: its blobs come in a later round.
    written["tailing"] = run_page(page, databaseUrl=source_db, userId=ALICE,
                                  title="tailing", write=WRITE)
    for title, wrote in written.items():
        assert wrote.get("error") is None, (title, wrote)
    at_source = referred_blobs(server, source_db)
    assert len(at_source) == 4  # a Blob and a string per item
    deadline = time.monotonic() + 30
    while (report := progress(target, target_url)).blobs[1] < len(at_source):
        assert time.monotonic() < deadline, f"the blobs were not copied: {report}"
        time.sleep(0.2)
    redirect(server, source_db, target, target_url)

    # The republished app: a fresh device of Alice, with the target's URL only.
    target_id = target_url.rsplit("/", 1)[1]
    for title, wrote in written.items():
        read_back(page, target_url, title, wrote, BLOB_BYTES, TEXT_LENGTH)
    assert blob_downloads(target, target_id) >= 4, (
        "the devices downloaded every blob from the target")

    assert referred_blobs(target, target_url) == at_source
    assert progress(target, target_url).blobs[1] == len(at_source)  # and no orphan
    bob = token(target, target_id, BOB)
    for blob_id in at_source:
        refused = requests.get(f"{target_url}/blob/1:{blob_id}", timeout=30,
                               headers={"Authorization": f"Bearer {bob}"})
        assert refused.status_code == 403, refused.text
    assert "Traceback" not in server.log() + target.log()
