"""``{db}/changes``: the WebSocket that tells clients about changes (``dxc.realtime``).

Clients build the URL by appending ``/changes`` to the database URL, so a
trailing slash gives ``//changes``; ``CollapseSlashes`` in ``app.py`` routes
it here too. Refusals (unknown database, foreign ``Origin``) happen before
the upgrade, which the client retries slowly; everything else is decided on
the open socket.
"""

from __future__ import annotations

import contextlib
import functools

import simple_websocket.ws
from flask import Blueprint, Flask, request
from flask.blueprints import BlueprintSetupState
from flask_sock import Sock
from simple_websocket import ConnectionClosed, Server
from werkzeug.exceptions import Forbidden
from wsproto.extensions import PerMessageDeflate

from dxc.api import services
from dxc.api.cors import origin_allowed
from dxc.api.forward import relay_socket
from dxc.protocol.live import SocketQuery
from dxc.realtime.session import SocketClosed

#: Seconds between WebSocket protocol pings, which find clients that vanished
#: without closing (the browser answers them; the addon never sees them).
PROTOCOL_PING_SECONDS = 30

# Browsers and Node's ws offer permessage-deflate, and simple-websocket accepts it with
# zlib contexts kept from one message to the next: about 100 KiB per socket from its first
# message on (170 KiB instead of 65 with 500 sockets), for sockets that mostly wait. Each
# message is compressed on its own instead, and the contexts freed after it (RFC 7692's
# no_context_takeover, which a server may ask of both sides).
simple_websocket.ws.PerMessageDeflate = functools.partial(
    PerMessageDeflate, server_no_context_takeover=True, client_no_context_takeover=True
)

bp = Blueprint("changes", __name__)
sock = Sock()


@bp.record_once
def configure(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    app.config.setdefault(
        "SOCK_SERVER_OPTIONS",
        {
            "ping_interval": PROTOCOL_PING_SECONDS,
            "max_message_size": app.extensions["dxc"].settings.max_body_bytes,
        },
    )


@bp.before_request
def admit() -> None:
    """Browsers send ``Origin`` on WebSockets and CORS does not apply: check it here
    against the same rule as CORS (the database's whitelist, ``DXC_CORS_ORIGINS``)."""
    db_id = request.view_args["db_id"]
    origin = request.headers.get("Origin")
    if origin and not origin_allowed(origin, db_id):
        raise Forbidden(f"origin {origin} is not whitelisted for this database")
    if services().relocations.target_of(db_id) is None:  # a deleted one may still forward
        services().router.shard_for(db_id)  # 404 for an unknown database


@sock.route("/<db_id>/changes", bp=bp)
def changes(ws: Server, db_id: str) -> None:
    # Never log the query: it carries the access token.
    target = services().relocations.target_of(db_id)
    if target is not None:  # the database moved: its new installation serves the socket
        with services().activity.relaying(db_id):
            relay_socket(ws, target)
        return
    services().live.serve(_Socket(ws), db_id, SocketQuery.parse(request.args))


class _Socket:
    """simple-websocket's connection as a :class:`dxc.realtime.session.Socket`."""

    def __init__(self, ws: Server) -> None:
        self.ws = ws

    def send(self, data: str | bytes) -> None:
        try:
            self.ws.send(data)
        except (ConnectionClosed, OSError) as closed:
            raise SocketClosed from closed

    def receive(self) -> str | bytes | None:
        try:
            return self.ws.receive()
        except ConnectionClosed:
            return None

    def close(self) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            self.ws.close()
