"""``{db}/changes``: the WebSocket that tells clients about changes (``dxc.realtime``).

Clients build the URL by appending ``/changes`` to the database URL, so a
trailing slash gives ``//changes``; ``CollapseSlashes`` in ``app.py`` routes
it here too. Refusals (unknown database, foreign ``Origin``) happen before
the upgrade, which the client retries slowly; everything else is decided on
the open socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.exceptions import Forbidden

from dxc.api import services
from dxc.api.cors import origin_allowed
from dxc.api.forward import relay_socket
from dxc.api.websocket import WebSocket
from dxc.protocol.live import SocketQuery

#: Seconds between WebSocket protocol pings, which find clients that vanished
#: without closing (the browser answers them; the addon never sees them).
PROTOCOL_PING_SECONDS = 30

bp = Blueprint("changes", __name__)


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


@bp.route("/<db_id>/changes", websocket=True)
def changes(db_id: str) -> Response:
    # Never log the query: it carries the access token.
    query = SocketQuery.parse(request.args)
    socket = WebSocket.accept(
        request.environ, PROTOCOL_PING_SECONDS, services().settings.max_body_bytes
    )
    try:
        target = services().relocations.target_of(db_id)
        if target is not None:  # the database moved: its new installation serves the socket
            with services().activity.relaying(db_id):
                relay_socket(socket, target)
        else:
            services().live.serve(socket, db_id, query)
    finally:
        socket.close()
    return _Upgraded()


class _Upgraded(Response):
    """The connection was the socket's: no HTTP answer may follow it."""

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if "gunicorn.socket" in environ:
            raise StopIteration  # gunicorn closes the connection without writing anything
        return super().__call__(environ, start_response)  # werkzeug's server closes it
