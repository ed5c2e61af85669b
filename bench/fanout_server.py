"""The server's own share of a fan-out, without a database or a client to wait for.

    .venv/bin/python bench/fanout_server.py [--sockets 500] [--fanouts 3] [--deflate]

``bench/live.py`` times a fan-out as 1000 clients see it, but they all live in
its one process, on the same CPUs as the server: the last socket's time is
mostly that client's own queue. Here one process holds ``--sockets`` sessions
(as one gevent worker does) on real ``WebSocket``\\ s over socket pairs, with a
feed whose database answers at once. Printed per fan-out: how long the hub
took to wake the sessions, until every ``changes`` frame was written, and
then until every client's ``ready`` was answered (each client sends it as
soon as the last frame was written; the writing counts).

Nothing here asserts a timing.
"""
# ruff: noqa: E402  (gevent must patch the standard library before anything imports it)

from gevent import monkey

monkey.patch_all()

import argparse
import json
import socket
import sys
import time
from pathlib import Path

import gevent
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dxc.access import ANONYMOUS, Principal
from dxc.api.websocket import WebSocket
from dxc.bus.base import Change
from dxc.protocol import live
from dxc.protocol.live import SocketQuery
from dxc.realtime.feed import CatchUp, LiveFeed, RealmView
from dxc.realtime.hub import Hub
from dxc.realtime.session import LiveSession

PUBLIC = RealmView(("rlm-public",))
ENTRY = json.dumps(
    {
        "table": "items",
        "muts": [
            {"type": "insert", "keys": ["itm1"], "values": [{"id": "itm1", "title": "to everyone"}]}
        ],
    }
)
WAIT = 30  # seconds any single step may take before the bench gives up


class InstantFeed(LiveFeed):
    """A public realm whose head is ``head``, answered without a database."""

    def __init__(self) -> None:
        super().__init__(control=None, router=None)  # type: ignore[arg-type]
        self.head = 1

    def realm_view(self, db_id: str, principal: Principal) -> RealmView:
        return PUBLIC

    def _catch_up(
        self, db_id: str, principal: Principal, client_rev: str | None, client_hash: str | None
    ) -> CatchUp:
        head = f"1:{self.head}"
        if client_rev == head:
            return CatchUp(PUBLIC)
        return CatchUp(PUBLIC, live.changes(client_rev, head, PUBLIC.hash, [ENTRY]))


class Client:
    """The client end of one socket pair, and the server's session on the other end."""

    def __init__(self, index: int, feed: LiveFeed, hub: Hub, deflate: bool) -> None:
        server_end, self.sock = socket.socketpair()
        self.ws = WSConnection(ConnectionType.CLIENT)
        offer = [PerMessageDeflate()] if deflate else []
        request = self.ws.send(Request(host="bench", target="/db/changes", extensions=offer))
        environ = {"gunicorn.socket": server_end, "PATH_INFO": "/db/changes"}
        for line in request.decode("latin-1").split("\r\n")[1:]:
            if line:
                name, value = line.split(":", 1)
                environ["HTTP_" + name.upper().replace("-", "_")] = value.strip()
        server = WebSocket.accept(environ)
        self.ws.receive_data(self.sock.recv(65536))
        assert isinstance(next(self.ws.events()), AcceptConnection)
        query = SocketQuery(3, "1:1", None, PUBLIC.hash, f"client{index}", "bench", None)
        self.session = LiveSession(server, feed, hub, "db1", ANONYMOUS, query)
        gevent.spawn(self.session.run)

    def ready(self, rev: str) -> None:
        message = {"type": "ready", "rev": rev, "realmSetHash": PUBLIC.hash}
        self.sock.sendall(self.ws.send(TextMessage(json.dumps(message))))

    def drain(self) -> None:
        self.ws.receive_data(self.sock.recv(65536))
        assert any(isinstance(event, TextMessage) for event in self.ws.events())


def changes_sent(clients: list[Client]) -> int:
    return sum(client.session.sent["changes"] for client in clients)


def wait_until(done, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, f"no {what} within {WAIT} s"
        gevent.sleep(0.001)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=500, help="one worker's share of 1000")
    parser.add_argument("--fanouts", type=int, default=3)
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="the sockets negotiate permessage-deflate, as browsers do",
    )
    args = parser.parse_args()
    feed, hub = InstantFeed(), Hub()
    clients = [Client(i, feed, hub, args.deflate) for i in range(args.sockets)]
    for client in clients:
        client.ready("1:1")
    wait_until(lambda: all(not c.session.waiting for c in clients), "first ready answered")
    print(f"{args.sockets} sockets in one process, permessage-deflate: {args.deflate}; ms")
    for _ in range(args.fanouts):
        feed.head += 1
        expected = changes_sent(clients) + len(clients)
        started = time.perf_counter()
        hub.deliver(Change.committed("db1", 1, feed.head, {"rlm-public"}, {"items"}))
        woken = time.perf_counter()
        wait_until(lambda n=expected: changes_sent(clients) == n, "changes sent")
        written = time.perf_counter()
        for client in clients:
            client.drain()
            client.ready(f"1:{feed.head}")
        wait_until(lambda: all(not c.session.waiting for c in clients), "ready answered")
        answered = time.perf_counter()
        print(
            f"woken {(woken - started) * 1000:5.1f}, every frame written "
            f"{(written - started) * 1000:5.1f}, every ready answered "
            f"{(answered - written) * 1000:5.1f}"
        )


if __name__ == "__main__":
    main()
