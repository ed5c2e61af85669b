"""Replication from a source that keeps no revisions (issue 14: "any server speaking the
Dexie Cloud protocol"), between two real servers.

The source is a dxc-server behind :class:`RevisionlessSource`, which drops our
``since`` extension: it answers as Dexie Cloud's own service does, with the
plain export the ``dexie-cloud`` CLI reads. ``flask dxc start-replication``
logs in there as the CLI does; the copy reads the whole export every second
(``DXC_REPLICATION_FULL_READ_SECONDS``), takes its own clients from its first
whole read on, and follows the source's writes until ``stop-replication``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dxc import tson
from dxc.manage import databases
from dxc.storage import replications
from dxc.storage.objects import ObjectStore
from tests.conftest import RunningServer
from tests.protocol_client import ALICE, BOB, Device, item
from tests.revisionless_source import RevisionlessSource
from tests.test_replication_server import (  # noqa: F401 (fixtures)
    FAST,
    HttpClient,
    dxc_command,
    second_installation,
    server_env,
    source_db,
    start_replication,
    wait_in_sync,
    write_shared_world,
)

FULL_READS = {**FAST, "DXC_REPLICATION_FULL_READ_SECONDS": "1"}


@pytest.fixture
def target(backend: str, tmp_path: Path) -> Iterator[RunningServer]:
    """A second installation that reads a revisionless source every second."""
    with second_installation(backend, tmp_path, FULL_READS) as server:
        yield server


def live(server: RunningServer, db_url: str) -> dict[tuple[str, str], tuple]:
    """Every live object: realm, owner and value (revisions are the copy's own)."""
    db_id = db_url.rsplit("/", 1)[1]
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        store = ObjectStore(connection, db_id)
        return {
            (r.tbl, r.key): (r.realm_id, r.owner, tson.loads(r.value))
            for r in store.changed_rows(0, store.current_revision()) if not r.deleted
        }


def wait_until(condition, server: RunningServer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.2)


def test_a_source_without_revisions_is_read_whole_and_followed_until_stopped(
    server, target, mailbox, source_db  # noqa: F811 (fixtures)
):
    alice = write_shared_world(source_db)
    db_id = source_db.rsplit("/", 1)[1]
    # The copy keeps the database's id, so that a republished app finds its local data.
    target_url = databases.create_database(target.services, db_id=db_id).url
    with RevisionlessSource(server.url) as source:
        start_replication(target, mailbox, f"{source.url}/{db_id}", into=target_url)
        report = wait_in_sync(target, target_url)
        assert report.full_reads and report.state == replications.TAILING
        assert live(target, target_url) == live(server, source_db)
        assert report.counts["items"] == (2, 2)  # itm2 was deleted there
        reads = source.export_reads

        # A client of the app republished with the new URL: its login is the source's
        # (not valid here: it signs in again) and its revision token is one of Dexie
        # Cloud's, which means nothing here: it gets everything it may see.
        moved = Device(HttpClient(target.url), target_url, "alice-moved")
        moved.login(ALICE)
        moved.last_pull = {"serverRevision": '[1,"2823"]', "realms": [], "inviteRealms": []}
        moved.sync()
        assert set(moved.state["items"]) == {"itm1", "itm3"}
        moved.sync([moved.op("items", "insert", ["itmHere"], "m1", values=[
            item("itmHere", title="written here")])])

        # The source keeps changing while some clients still use it.
        alice.sync([
            alice.op("items", "update", ["itm1"], "t4", changeSpecs=[{"title": "one!"}]),
            alice.op("items", "delete", ["itm3"], "t4"),
            alice.op("items", "insert", ["itm4"], "t4", values=[item("itm4", title="four")]),
        ])
        def here() -> dict[tuple[str, str], tuple]:
            return live(target, target_url)

        wait_until(lambda: ("items", "itm4") in here() and ("items", "itm3") not in here(),
                   target)
        assert here()[("items", "itm1")][2]["title"] == "one!"
        assert here()[("items", "itmHere")][2]["title"] == "written here"  # kept
        assert {key: value for key, value in here().items() if key[1] != "itmHere"} == live(
            server, source_db
        )
        moved.sync()
        assert set(moved.state["items"]) == {"itm1", "itm4", "itmHere"}
        assert source.export_reads > reads

        # Stopped once no client uses the source: the copy goes on taking writes.
        done = dxc_command(target, "stop-replication", "--db", target_url)
        assert done.returncode == 0 and "takes writes as before" in done.stdout, done.stderr
        time.sleep(3)  # the job checks its lease every second here
        reads = source.export_reads
        time.sleep(3)
        assert source.export_reads == reads
    moved.sync([moved.op("items", "insert", ["itmLater"], "m2", values=[
        item("itmLater", title="after the copy")])])
    assert ("items", "itmLater") in live(target, target_url)
    # Every demo user of the source came along: Bob signs in here too.
    assert Device(HttpClient(target.url), target_url, "bob-moved").login(BOB)["accessToken"]
