"""The real client at a copy of a source that keeps no revisions (issue 14).

The source is a dxc-server behind :class:`RevisionlessSource` (it answers as
Dexie Cloud's own service does: the plain export, no revisions); the target
copies it by full reads. A real dexie-cloud-addon device then uses the
target: it signs in, gets its user's objects, receives a change made at the
source live, and writes there (node/scenarios/full_reads.mjs).
"""

from __future__ import annotations

import threading
import time

import pytest

from dxc.manage import databases
from tests.conftest import RunningServer
from tests.e2e.runner import run_scenario
from tests.protocol_client import ALICE
from tests.revisionless_source import RevisionlessSource
from tests.test_replication_full_reads_server import live, target  # noqa: F401 (fixture)
from tests.test_replication_server import (  # noqa: F401 (fixtures)
    server_env,
    source_db,
    start_replication,
    wait_in_sync,
    write_shared_world,
)

pytestmark = pytest.mark.e2e

CHANGED = "changed at the source"


def titles(server: RunningServer, db_url: str) -> set[str]:
    return {value["title"] for (table, _), (_, _, value) in live(server, db_url).items()
            if table == "items"}


def test_the_real_client_uses_a_copy_read_whole_from_its_source(
    server, target, mailbox, source_db, tmp_path  # noqa: F811 (fixtures)
):
    alice = write_shared_world(source_db)
    db_id = source_db.rsplit("/", 1)[1]
    target_url = databases.create_database(target.services, db_id=db_id).url
    control = tmp_path / "control"
    control.mkdir()
    outcome: dict = {}

    def scenario() -> None:
        try:
            outcome["result"] = run_scenario(
                "full_reads", timeout=180, targetUrl=target_url, user=ALICE,
                controlDir=str(control), changedTitle=CHANGED, timeoutMs=60000,
            )
        except BaseException as error:  # raised again by the test's thread
            outcome["error"] = error

    with RevisionlessSource(server.url) as source:
        start_replication(target, mailbox, f"{source.url}/{db_id}", into=target_url)
        wait_in_sync(target, target_url)
        node = threading.Thread(target=scenario)
        node.start()
        deadline = time.monotonic() + 90
        while not (control / "connected").exists() and node.is_alive():
            assert time.monotonic() < deadline, "the device never connected"
            time.sleep(0.1)
        alice.sync([alice.op("items", "update", ["itm1"], "t9", changeSpecs=[{"title": CHANGED}])])
        node.join(200)
    assert not node.is_alive(), "the scenario hung"
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    assert result["initialTitles"] == ["moved", "one"]  # itm2 was deleted at the source
    assert result["finalTitles"] == sorted([CHANGED, "moved", "written here"])
    assert titles(target, target_url) == {CHANGED, "moved", "written here"}
    assert titles(server, source_db) == {CHANGED, "moved"}
