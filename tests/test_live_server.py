"""The ``/changes`` WebSocket of the real server (gunicorn, gevent), at the protocol level.

The real-client tests (``tests/e2e/test_live_e2e.py``) show that live changes work; these pin
down what they cannot provoke: routing, refusals, tokens, and the exact messages.
"""

from __future__ import annotations

import json
import socket
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from dxc.auth.tokens import AccessClaims
from dxc.manage.importer import import_document
from dxc.protocol.live import realm_set_hash

USER = "alice@demo.local"
PUBLIC_HASH = realm_set_hash(["rlm-public"])


class Socket:
    """A blocking WebSocket client that keeps every frame (also those sent before a close)."""

    def __init__(self, url: str, origin: str | None = None, deflate: bool = False) -> None:
        """``deflate``: offer permessage-deflate, as browsers and Node's ws do."""
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=15)
        self.ws = WSConnection(ConnectionType.CLIENT)
        headers = [("Origin", origin)] if origin else []
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        offer = [PerMessageDeflate()] if deflate else []
        self.sock.sendall(self.ws.send(
            Request(parts.netloc, target, extra_headers=headers, extensions=offer)
        ))
        self.status: int | None = None
        self.extensions: list = []
        self.messages: deque[dict[str, Any]] = deque()
        self.frames: deque[bytes] = deque()  # binary frames (Y.js messages)
        self.closed = False
        self.close_code: int | None = None
        while self.status is None:
            self._pump()

    def _pump(self) -> None:
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.status = 101
                self.extensions = event.extensions
            elif isinstance(event, RejectConnection):
                self.status = event.status_code
            elif isinstance(event, TextMessage):
                self.messages.append(json.loads(event.data))
            elif isinstance(event, BytesMessage):
                self.frames.append(bytes(event.data))
            elif isinstance(event, CloseConnection):
                self.closed = True
                self.close_code = event.code
            elif not isinstance(event, RejectData):
                raise AssertionError(f"unexpected {event!r}")
        if not data:
            self.closed = True

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(self.ws.send(TextMessage(json.dumps(message))))

    def send_in_parts(self, message: dict[str, Any], size: int) -> None:
        """``message`` as a fragmented message of ``size`` characters a frame."""
        text = json.dumps(message)
        for start in range(0, len(text), size):
            last = start + size >= len(text)
            self.sock.sendall(self.ws.send(TextMessage(text[start:start + size], True, last)))

    def send_bytes(self, frame: bytes) -> None:
        self.sock.sendall(self.ws.send(BytesMessage(frame)))

    def receive_bytes(self) -> bytes | None:
        """The next binary frame; None once the server closed the socket."""
        while not self.frames and not self.closed:
            self._pump()
        return self.frames.popleft() if self.frames else None

    def receive(self) -> dict[str, Any] | None:
        """The next message; None once the server closed the socket."""
        while not self.messages and not self.closed:
            self._pump()
        return self.messages.popleft() if self.messages else None

    def round_trip(self) -> None:
        """Wait until the server handled everything sent so far; fail on anything else."""
        self.send({"type": "ping"})
        assert self.receive() == {"type": "pong"}

    def close(self) -> None:
        self.sock.close()


def socket_url(db_url: str, path: str = "/changes", **query: str) -> str:
    params = {"v": "3", "clientId": "test-client", "dxcv": "4.4.14", **query}
    return db_url.replace("http://", "ws://") + path + "?" + "&".join(
        f"{name}={value}" for name, value in params.items()
    )


@pytest.fixture
def db_url(server) -> str:
    return server.create_database(demo_users=(USER,))


def db_id_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def token(server, db_url: str, ttl: int | None = None) -> str:
    claims = AccessClaims(sub=USER, scopes=frozenset({"ACCESS_DB"}), user_type="demo")
    return server.services.signer.issue(db_id_of(db_url), claims, ttl=ttl).token


@pytest.mark.parametrize("path", ["/changes", "//changes"])
def test_the_socket_is_at_changes_with_or_without_a_doubled_slash(server, db_url, path):
    client = Socket(socket_url(db_url, path))
    assert client.status == 101
    client.round_trip()
    client.close()


def test_an_unknown_database_refuses_the_upgrade(server):
    client = Socket(socket_url(f"{server.url}/znosuchdb"))
    assert client.status == 404
    client.close()


@pytest.mark.parametrize("server_env", [{"DXC_CORS_ORIGINS": "http://app.example"}])
@pytest.mark.parametrize(
    ("origin", "status"),
    [("http://app.example", 101), ("http://evil.example", 403), (None, 101)],
)
def test_browsers_from_other_origins_are_refused(server, db_url, origin, status):
    client = Socket(socket_url(db_url), origin=origin)
    assert client.status == status
    client.close()


def test_an_invalid_token_gets_an_error_message_and_the_socket_closes(server, db_url):
    client = Socket(socket_url(db_url, token="not-a-token"))
    assert client.status == 101
    assert client.receive() == {"type": "error", "error": "Invalid token"}
    assert client.receive() is None
    client.close()


def test_an_expired_token_is_told_to_refresh_and_the_socket_stays_open(server, db_url):
    client = Socket(socket_url(db_url, token=token(server, db_url, ttl=-120)))
    assert client.receive() == {"type": "token-expired"}
    client.send({"type": "ready", "rev": "1:0", "realmSetHash": PUBLIC_HASH})
    client.round_trip()  # still open, and nothing but the pong
    client.close()


def test_an_anonymous_socket_gets_public_changes_as_a_changes_message(server, db_url):
    db_id = db_id_of(db_url)
    import_document(server.services, db_id, {"schema": {"items": "@id"}})
    client = Socket(socket_url(db_url))
    client.send({"type": "ready", "rev": "1:0", "realmSetHash": "stale"})
    assert client.receive() == {"type": "realms-changed", "realmsHash": PUBLIC_HASH}
    client.send({"type": "ready", "rev": "1:0", "realmSetHash": PUBLIC_HASH})
    client.round_trip()  # up to date: nothing to send

    import_document(
        server.services, db_id, {"data": {"rlm-public": {"items": {"itm1": {"title": "one"}}}}}
    )
    message = client.receive()
    assert message == {
        "type": "changes",
        "baseRev": "1:0",
        "newRev": "1:1",
        "realmSetHash": PUBLIC_HASH,
        "changes": [
            {
                "table": "items",
                "muts": [
                    {
                        "type": "upsert",
                        "keys": ["itm1"],
                        "values": [{"title": "one", "realmId": "rlm-public", "id": "itm1"}],
                    }
                ],
            }
        ],
    }
    client.send({"type": "ready", "rev": "1:1", "realmSetHash": PUBLIC_HASH})
    client.round_trip()
    client.close()


def test_compressed_sockets_keep_no_zlib_context_between_messages(server, db_url):
    """A context kept per socket costs ~100 KiB from its first message on, for sockets
    that mostly wait: each message is compressed on its own (RFC 7692)."""
    db_id = db_id_of(db_url)
    import_document(server.services, db_id, {"schema": {"items": "@id"}})
    client = Socket(socket_url(db_url), deflate=True)
    (deflate,) = client.extensions
    assert deflate.server_no_context_takeover and deflate.client_no_context_takeover
    client.send({"type": "ready", "rev": "1:0", "realmSetHash": PUBLIC_HASH})
    client.round_trip()
    for key in ("itm1", "itm2"):  # compressed messages, each readable on its own
        import_document(server.services, db_id, {"data": {"rlm-public": {"items": {key: {}}}}})
        message = client.receive()
        assert message["changes"][0]["muts"][0]["keys"] == [key]
        client.send({"type": "ready", "rev": message["newRev"], "realmSetHash": PUBLIC_HASH})
    client.close()


def test_a_logged_in_socket_sees_its_realms_and_not_other_users_changes(server, db_url):
    db_id = db_id_of(db_url)
    import_document(server.services, db_id, {"schema": {"items": "@id"}})
    mine = realm_set_hash(["rlm-public", USER])
    client = Socket(socket_url(db_url, token=token(server, db_url)))
    client.send({"type": "ready", "rev": "1:0", "realmSetHash": mine})
    client.round_trip()
    import_document(
        server.services, db_id, {"data": {"bob@demo.local": {"items": {"itmB": {"n": 1}}}}}
    )
    import_document(server.services, db_id, {"data": {USER: {"items": {"itmA": {"n": 2}}}}})
    message = client.receive()
    assert (message["type"], message["baseRev"], message["newRev"]) == ("changes", "1:0", "1:2")
    keys = [key for entry in message["changes"] for mut in entry["muts"] for key in mut["keys"]]
    assert keys == ["itmA"]
    client.close()


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
def test_a_fragmented_message_is_read_whole(server, db_url, deflate):
    client = Socket(socket_url(db_url), deflate=deflate)
    client.send_in_parts({"type": "ready", "rev": "1:0", "realmSetHash": "stale"}, 7)
    assert client.receive() == {"type": "realms-changed", "realmsHash": PUBLIC_HASH}
    client.send_in_parts({"type": "ping"}, 3)
    assert client.receive() == {"type": "pong"}
    client.close()


@pytest.mark.parametrize("server_env", [{"DXC_MAX_BODY_BYTES": "1000"}])
def test_a_message_bigger_than_a_request_body_may_be_closes_the_socket(server, db_url):
    client = Socket(socket_url(db_url))
    client.round_trip()
    client.send_in_parts({"type": "ping", "padding": "x" * 1200}, 400)
    while (message := client.receive()) is not None:
        assert message == {"type": "pong"}, "only a keepalive before the close"
    assert client.close_code == 1009  # RFC 6455: message too big
    client.close()
