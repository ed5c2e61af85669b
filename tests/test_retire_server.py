"""``flask dxc stats`` and ``flask dxc delete-db`` against real gunicorn servers (two
gevent workers each), the CLI run as a subprocess like an operator's shell.

stats: sockets and syncs are counted in every worker and summed; forwarded requests
apart. delete-db: the code mailed to the owner is required; after it, a database that
moved is still forwarded, for the period given, then answers 410.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_websocket import Client
from sqlalchemy import text

from dxc.manage import databases
from dxc.storage import databases as database_store
from tests.conftest import ROOT, RunningServer, postgres_database, running_server
from tests.mailbox import Mailbox
from tests.protocol_client import ALICE, Device
from tests.test_replication_server import HttpClient, target_env

OWNER = "owner@example.com"
FAST = {"DXC_STATS_FLUSH_SECONDS": "1"}
BATCH = 8


@pytest.fixture
def server_env() -> dict[str, str]:
    return FAST


@pytest.fixture
def target(backend: str, tmp_path: Path) -> Iterator[RunningServer]:
    """A second installation, where databases of ``server`` move to."""
    folder = tmp_path / "target"
    folder.mkdir()
    with contextlib.ExitStack() as stack:
        url = (f"sqlite:///{folder / 'dxc.sqlite'}" if backend == "sqlite"
               else stack.enter_context(postgres_database()))
        yield stack.enter_context(running_server(url, folder))


def dxc(server: RunningServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``flask --app app dxc ARGS`` in ``server``'s environment."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "dxc", *args],
        cwd=ROOT, env={**target_env(server), **FAST}, input=stdin, capture_output=True,
        text=True, timeout=60,
    )


def stats(server: RunningServer, db_url: str) -> dict[str, Any]:
    done = dxc(server, "stats", "--db", db_url, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def delete_db(server: RunningServer, mailbox: Mailbox, db_url: str, mail: int, *args: str) -> str:
    """``delete-db`` confirmed with the code of the ``mail``-th mail to OWNER; its output."""
    deleting = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "dxc", "delete-db", db_url,
         "--code-stdin", *args],
        cwd=ROOT, env={**target_env(server), **FAST}, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output, _ = deleting.communicate(mailbox.code(OWNER, count=mail) + "\n", timeout=60)
    assert deleting.returncode == 0, output
    return output


def wait_for(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.3)
    return found


def wait_for_status(send: Callable[[], requests.Response], status: int) -> requests.Response:
    """``send()``'s answer once it has ``status`` (a 4xx answer is falsy: no wait_for)."""
    return wait_for(lambda: [a for a in [send()] if a.status_code == status], str(status))[0]


def open_socket(db_url: str, client: int) -> Client:
    return Client.connect("ws" + db_url.removeprefix("http") + f"/changes?v=2&clientId=c{client}")


def test_stats_counts_sockets_and_syncs_from_every_worker(server):
    """Requests go in concurrent batches until both gunicorn workers counted some (one
    worker may take a whole sequential burst); the sums must then be exact."""
    db_url = server.create_database((ALICE,))
    db_id = db_url.rsplit("/", 1)[1]
    devices = [Device(HttpClient(server.url), db_url, f"device-{n}") for n in range(BATCH)]
    with ThreadPoolExecutor(BATCH) as pool:
        list(pool.map(lambda device: device.login(ALICE), devices))
        syncs = _until_both_workers(server, db_id, "activity", lambda: list(pool.map(
            lambda device: device.sync(), devices
        )))
        sockets: list[Client] = []
        _until_both_workers(server, db_id, "open_sockets", lambda: sockets.extend(pool.map(
            lambda n: open_socket(db_url, len(sockets) + n), range(BATCH)
        )))

    report = wait_for(
        lambda: (r := stats(server, db_url))["openSockets"] == len(sockets)
        and r["syncs"] == syncs and r,
        f"{len(sockets)} sockets and {syncs} syncs",
    )
    assert report["state"] == "served" and report["forwarded"] == 0
    assert report["relayedSockets"] == 0 and report["workersWithSockets"] == 2

    for socket in sockets:
        socket.close()
    wait_for(lambda: stats(server, db_url)["openSockets"] == 0, "sockets closed")
    printed = dxc(server, "stats", "--db", db_url, "--minutes", "10")
    assert printed.returncode == 0 and f"{syncs} sync request(s) served here" in printed.stdout


def _until_both_workers(
    server: RunningServer, db_id: str, table: str, batch: Callable[[], Any]
) -> int:
    """Run ``batch`` until two workers have rows of ``db_id`` in ``table``; how many
    requests that made."""
    for rounds in range(1, 8):
        batch()
        time.sleep(2.5)  # a flush of each worker (DXC_STATS_FLUSH_SECONDS=1)
        with server.services.control.connect() as connection:
            workers = connection.scalar(
                text(f"SELECT COUNT(DISTINCT worker_id) FROM {table} WHERE db_id = :db"),
                {"db": db_id},
            )
        if workers == 2:
            return rounds * BATCH
    raise AssertionError(f"one worker took all of {rounds * BATCH} requests")


def test_stats_and_delete_db_refuse_an_unknown_database(server):
    for args in (["stats", "--db", f"{server.url}/nosuchdb"],
                 ["delete-db", f"{server.url}/nosuchdb", "--code-stdin"]):
        done = dxc(server, *args)
        assert done.returncode == 1, done.stdout
        assert "no database 'nosuchdb'" in done.stderr and "Traceback" not in done.stderr


def test_delete_db_needs_the_mailed_code_keeps_forwarding_then_answers_410(
    server, target, mailbox
):
    server.services.mailer.configure(mailbox.url, mailbox.secret)
    source = databases.create_database(server.services, owner_email=OWNER)
    target_url = target.create_database()
    moved = dxc(server, "redirect", "--from", source.url, "--to", target_url)
    assert moved.returncode == 0, moved.stderr
    target_page = requests.get(target_url, timeout=10).json()
    wait_for(lambda: requests.get(source.url, timeout=10).json() == target_page, "forwarding")

    wrong = dxc(server, "delete-db", source.url, "--code-stdin", stdin="WRONGCODE\n")
    assert wrong.returncode == 1 and "wrong confirmation code" in wrong.stderr
    assert f"A confirmation code was sent to {OWNER}" in wrong.stdout
    assert mailbox.code(OWNER)  # the code went through the e-mail channel
    assert source.db_id in _databases(server)

    output = delete_db(server, mailbox, source.url, 2, "--keep-redirect-days", str(12 / 86400))
    assert "was deleted" in output and target_url in output
    assert source.db_id not in _databases(server)

    # Forwarded on for the period: its clients still reach the new installation.
    assert requests.get(source.url, timeout=10).json() == target_page
    wait_for(lambda: stats(server, source.url)["forwarded"] >= 2, "forwarded requests counted")
    report = stats(server, source.url)
    assert report["state"] == "deleted" and report["movedTo"] == target_url
    assert report["syncs"] == 0

    gone = wait_for_status(
        lambda: requests.post(source.url + "/sync", data=b"{}", timeout=10), 410
    )
    assert gone.json()["error"] == "database_deleted"
    assert requests.get(source.url, timeout=10).status_code == 410


def test_delete_db_of_a_database_that_never_moved_answers_410_at_once(server, mailbox):
    server.services.mailer.configure(mailbox.url, mailbox.secret)
    created = databases.create_database(server.services, owner_email=OWNER)
    done = dxc(server, "delete-db", created.url, "--code-stdin", stdin="x\n")  # a code is mailed
    assert done.returncode == 1
    assert "answers 410 Gone" in delete_db(server, mailbox, created.url, 2)
    answer = wait_for_status(lambda: requests.get(created.url + "/changes", timeout=10), 410)
    assert answer.json()["error"] == "database_deleted"
    again = dxc(server, "create", "--id", created.db_id, "--json")
    assert again.returncode == 1 and "was deleted here" in again.stderr


def _databases(server: RunningServer) -> list[str]:
    with server.services.control.connect() as connection:
        return database_store.list_databases(connection)
