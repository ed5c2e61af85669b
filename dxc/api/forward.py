"""Clients of a database that moved are served by its new installation, through this one.

The addon never changes its ``databaseUrl`` by itself, and ``fetch`` drops
the ``Authorization`` header when it follows a redirect to another origin,
so a 307 would turn every sync into an anonymous one. Instead, once
``flask dxc redirect`` recorded where a database went, every request under
its URL is forwarded there (method, path, query, body and the
``Authorization`` header, both ways streamed) and the ``/changes`` socket is
relayed frame by frame. Browsers' ``Origin`` was checked here (CORS, the
socket's admission) and is not passed on: the new installation need not
know this app's origins.

The other side: a copy that has not taken over yet holds its clients (at
most :data:`HOLD_SECONDS`) until it has, then serves them; they arrive the
moment its source stops writing. See docs/migration.md.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import requests
from flask import Flask, Response, request
from requests.adapters import HTTPAdapter
from simple_websocket import Client, ConnectionClosed

from dxc.api import services
from dxc.api.cors import database_in_path
from dxc.api.websocket import WebSocket
from dxc.errors import Gone, Moving
from dxc.realtime.session import SocketClosed

log = logging.getLogger(__name__)

#: Sent by a replication reading its source (``dxc.replication.source``): served here, never
#: forwarded (the copy reads the last writes and the logins of a database that moved).
REPLICA_HEADER = "X-Dxc-Replica"
#: How long a client of a copy that is taking over waits before a 503 (it retries).
HOLD_SECONDS = 15
#: (connect, read) seconds for the new installation to answer.
TIMEOUT = (10, 120)
CHUNK = 64 * 1024
#: Headers of one hop only (RFC 9110 §7.6.1), the ones recomputed, and those decided here.
NOT_FORWARDED = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length", "origin", "cookie",
    REPLICA_HEADER.lower(),
})
NOT_RETURNED = frozenset({
    "connection", "keep-alive", "transfer-encoding", "trailer", "upgrade", "vary",
    "set-cookie",
})

_http = requests.Session()
_http.mount("http://", HTTPAdapter(pool_maxsize=100))
_http.mount("https://", HTTPAdapter(pool_maxsize=100))


def register_forwarding(app: Flask) -> None:
    @app.before_request
    def forward_moved() -> Response | None:
        db_id = database_in_path(request.path)
        if db_id is None or request.method == "OPTIONS":
            return None
        relocations = services().relocations
        if relocations.gone(db_id):
            raise Gone(f"the database {db_id} was deleted")
        held = request.path.strip("/") != db_id  # its page (GET /<db>) answers at once
        if held and relocations.arriving(db_id) and not relocations.wait_until_live(
            db_id, HOLD_SECONDS
        ):
            raise Moving(f"{db_id} is arriving from another installation: try again shortly")
        target = relocations.target_of(db_id)
        if target is None or is_socket_upgrade() or request.headers.get(REPLICA_HEADER):
            return None  # the socket is relayed by its own route (dxc.api.changes)
        services().activity.forwarded(db_id)
        return _forward(target + request.path[len(db_id) + 1:])


def is_socket_upgrade() -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _forward(url: str) -> Response:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED}
    headers["X-Forwarded-For"] = request.remote_addr or ""
    length = request.content_length
    body = _body() if length or request.headers.get("Transfer-Encoding") else None
    prepared = _http.prepare_request(requests.Request(
        request.method, url, params=request.query_string.decode("latin-1") or None,
        headers=headers, data=body,
    ))
    if length:  # sent as it arrives, with its length (not re-chunked)
        prepared.headers.pop("Transfer-Encoding", None)
        prepared.headers["Content-Length"] = str(length)
    try:
        upstream = _http.send(prepared, stream=True, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        log.warning("forwarding to %s failed: %s", url.split("?")[0], type(error).__name__)
        raise Moving("the database moved and its new installation does not answer") from None
    returned = [
        (k, v) for k, v in upstream.headers.items()
        if k.lower() not in NOT_RETURNED and not k.lower().startswith("access-control-")
    ]
    return Response(_streamed(upstream), status=upstream.status_code, headers=returned)


def _body() -> Iterator[bytes]:
    while chunk := request.stream.read(CHUNK):
        yield chunk


def _streamed(upstream: requests.Response) -> Iterator[bytes]:
    try:
        yield from upstream.raw.stream(CHUNK, decode_content=False)
    finally:
        upstream.close()


def relay_socket(ws: WebSocket, target: str) -> None:
    """Relay the ``/changes`` socket ``ws`` to ``target``'s, frames both ways, until
    either side closes. The query (with the access token) goes along; it is never logged."""
    url = "ws" + target.removeprefix("http") + "/changes"
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    try:
        upstream = Client.connect(url, headers={"X-Forwarded-For": request.remote_addr or ""})
    except (ConnectionError, OSError, ConnectionClosed) as error:
        log.warning("relaying a socket to %s failed: %s", target, type(error).__name__)
        return  # closed: the client reconnects later
    back = threading.Thread(target=_pump, args=(upstream, ws), daemon=True)
    back.start()
    _pump(ws, upstream)
    back.join(timeout=5)


def _pump(source: WebSocket | Client, sink: WebSocket | Client) -> None:
    """Frames from ``source`` to ``sink`` until one closes; then closes both."""
    try:
        while (frame := source.receive()) is not None:
            sink.send(frame)
    except (ConnectionClosed, SocketClosed, OSError):
        pass
    finally:
        for side in (source, sink):
            with contextlib.suppress(ConnectionClosed, OSError):
                side.close()
