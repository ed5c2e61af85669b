"""Moving a live database between two installations with the real client (issue 14).

The source (``server``) and the target (a second gunicorn installation on its
own database) run side by side. Real dexie-cloud-addon devices keep writing to
the source while ``flask dxc start-replication`` copies it; once
``replication-progress`` says in sync, ``flask dxc redirect`` runs on the
source and the same devices, unmodified, go on through it; then one of them
is "republished" with the target's URL (see node/scenarios/migration.mjs).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dxc import tson
from dxc.manage import databases
from dxc.storage.objects import ObjectStore
from tests.conftest import ROOT, RunningServer
from tests.e2e.runner import run_scenario
from tests.protocol_client import ALICE
from tests.test_replication_server import (  # noqa: F401 (fixtures)
    server_env,
    source_db,
    start_replication,
    target,
    target_env,
    wait_in_sync,
)

pytestmark = pytest.mark.e2e


def titles(server: RunningServer, db_url: str) -> set[str]:
    db_id = db_url.rsplit("/", 1)[1]
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        store = ObjectStore(connection, db_id)
        return {
            tson.loads(row.value)["title"]
            for row in store.live_objects("items", [ALICE])
        }


def redirect(source: RunningServer, source_url: str, target_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "dxc", "redirect",
         "--from", source_url, "--to", target_url],
        cwd=ROOT, env=target_env(source), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never came"
        time.sleep(0.1)


def test_clients_keep_working_through_replication_redirect_and_republishing(
    server, target, mailbox, source_db, tmp_path  # noqa: F811 (fixtures)
):
    control = tmp_path / "control"
    control.mkdir()
    # The copy keeps the database's id (flask dxc create --id): the addon names its local
    # database after it, so the republished app finds its login and data there.
    target_url = databases.create_database(
        target.services, db_id=source_db.rsplit("/", 1)[1]
    ).url
    assert target_url != source_db
    outcome: dict = {}

    def scenario() -> None:
        try:
            outcome["result"] = run_scenario(
                "migration", timeout=240, sourceUrl=source_db, targetUrl=target_url,
                user=ALICE, controlDir=str(control), timeoutMs=120000,
            )
        except BaseException as error:  # raised again by the test's thread
            outcome["error"] = error

    node = threading.Thread(target=scenario)
    node.start()
    wait_for(control / "ready", 90)

    start_replication(target, mailbox, source_db, into=target_url)
    report = wait_in_sync(target, target_url)
    assert report.in_sync
    said = redirect(server, source_db, target_url)
    assert "takes no more writes" in said
    (control / "redirected").write_text("")
    node.join(300)
    assert not node.is_alive(), "the scenario hung"
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]

    written = set(result["written"])
    assert result["beforeRedirect"] > 0  # writes went on during the replication
    assert result["prompts"] == []  # nobody was asked to log in again
    assert result["userAfterRepublish"] == ALICE
    assert result["refreshed"], "the source's refresh token did not work at the target"
    assert written <= set(result["watcherTitles"])  # live changes, nothing lost
    assert written <= set(result["republishedTitles"])
    assert titles(target, target_url) == written  # every acknowledged write is at the target
    # The source took no write after the redirect: they were forwarded to the target.
    assert titles(server, source_db) <= written - {"after the redirect", "republished"}
