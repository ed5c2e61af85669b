"""An idle ``/changes`` socket costs the real server one greenlet, the request's own.

Why it matters: sockets mostly wait, for hours, and memory per idle socket is what limits
a worker. With three greenlets each (simple-websocket's reader thread and one more of the
session's, ~8-10 KiB a greenlet) a socket cost 65 KiB; with one it costs 28 KiB
(docs/live-changes.md, Costs and limits). A change is sent by a greenlet that ends once it
has sent. No client can see greenlets: the worker counts them itself
(``tests/greenlet_census.py``).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dxc.manage.importer import import_document
from tests.test_live_server import PUBLIC_HASH, Socket, db_id_of, socket_url

#: Idle sockets opened beside the first: each may add one greenlet, no more.
SOCKETS = 40


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    """One worker, which holds every socket, and where it tells its greenlet count."""
    return {"WEB_CONCURRENCY": "1", "GREENLET_CENSUS": str(tmp_path / "census.sock")}


@pytest.fixture
def server_app() -> str:
    """The server's app, in a worker that counts its greenlets."""
    return "tests.greenlet_census:app"


def live_greenlets(server_env: dict[str, str]) -> int:
    with socket.socket(socket.AF_UNIX) as census:
        census.connect(server_env["GREENLET_CENSUS"])
        return int(census.makefile().readline())


def idle_socket(db_url: str, rev: str) -> Socket:
    """An anonymous socket whose client is at ``rev``, told the server so, as the addon does."""
    client = Socket(socket_url(db_url))
    client.send({"type": "ready", "rev": rev, "realmSetHash": PUBLIC_HASH})
    client.round_trip()  # up to date: nothing to send
    return client


def publish(server, db_id: str, key: str, clients: list[Socket]) -> str:
    """A public change, received and acknowledged by every client; the new revision."""
    import_document(server.services, db_id, {"data": {"rlm-public": {"items": {key: {}}}}})
    for client in clients:
        while (message := client.receive())["type"] == "pong":
            pass  # a keep-alive: the machine was slow to open the sockets
        assert message["type"] == "changes"
        client.send({"type": "ready", "rev": message["newRev"], "realmSetHash": PUBLIC_HASH})
        client.round_trip()
    return message["newRev"]


def test_an_idle_socket_costs_one_greenlet_before_and_after_a_change(server, server_env):
    db_url = server.create_database()
    db_id = db_id_of(db_url)
    import_document(server.services, db_id, {"schema": {"items": "@id"}})
    # The worker's first socket also starts what every worker has once (its bus listener).
    clients = [idle_socket(db_url, "1:0")]
    rev = publish(server, db_id, "itm1", clients)
    before = live_greenlets(server_env)

    clients += [idle_socket(db_url, rev) for _ in range(SOCKETS)]
    assert live_greenlets(server_env) - before == SOCKETS
    publish(server, db_id, "itm2", clients)
    assert live_greenlets(server_env) - before == SOCKETS, "a change's greenlets end once sent"
    for client in clients:
        client.close()
