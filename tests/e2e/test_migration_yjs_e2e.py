"""Y.js documents move with their database (issue 14), read by the real client: a real
device (dexie-cloud-addon with y-dexie) writes two documents at the source (one of a
private-id object), ``flask dxc start-replication`` copies the database to a second
installation, ``redirect`` hands it over, and a new device of the user at the target
reads the same texts (node/scenarios/yjs_transfer.mjs). SQLite and PostgreSQL, gunicorn.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.runner import run_scenario
from tests.e2e.test_migration_e2e import redirect
from tests.protocol_client import ALICE
from tests.test_replication_server import (  # noqa: F401 (fixtures)
    progress,
    server_env,
    source_db,
    start_replication,
    target,
    wait_in_sync,
)

pytestmark = pytest.mark.e2e


def test_a_real_clients_documents_are_read_at_the_target_after_the_move(
    server, target, mailbox, source_db  # noqa: F811 (fixtures)
):
    written = run_scenario("yjs_transfer", timeout=90, databaseUrl=source_db, user=ALICE,
                           mode="write")
    target_url = start_replication(target, mailbox, source_db)
    report = wait_in_sync(target, target_url)
    assert report.y_documents == (2, 2)
    redirect(server, source_db, target_url)
    deadline = time.monotonic() + 60
    while progress(target, target_url).state != "switched":
        assert time.monotonic() < deadline, target.log()[-3000:]
        time.sleep(0.2)

    read = run_scenario("yjs_transfer", timeout=90, databaseUrl=target_url, user=ALICE,
                        mode="read", id=written["id"])
    assert read["downloads"] >= 1
    assert (read["note"], read["prefs"]) == (written["note"], written["prefs"])
