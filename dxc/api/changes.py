"""``{db}/changes``: the WebSocket that tells clients about changes (``dxc.realtime``).

Clients build the URL by appending ``/changes`` to the database URL, so a
trailing slash gives ``//changes``; ``CollapseSlashes`` in ``app.py`` routes
it here too. Refusals (unknown database, foreign ``Origin``) happen before
the upgrade, which the client retries slowly; everything else is decided on
the open socket.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Response, g, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import Forbidden

from dxc import logs
from dxc.api import services
from dxc.api.cors import origin_allowed
from dxc.api.forward import relay_socket
from dxc.api.websocket import WebSocket
from dxc.protocol.live import SocketQuery
from dxc.realtime.service import LiveService

log = logging.getLogger(__name__)

#: Seconds between WebSocket protocol pings, which find clients that vanished
#: without closing (the browser answers them; the addon never sees them).
PROTOCOL_PING_SECONDS = 30

bp = Blueprint("changes", __name__)


@bp.record_once
def serve_sockets(state: BlueprintSetupState) -> None:
    state.app.wsgi_app = ServeSockets(state.app.wsgi_app)  # type: ignore[method-assign]


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
    target = services().relocations.target_of(db_id)
    if target is not None:  # the database moved: its new installation serves the socket
        try:
            with services().activity.relaying(db_id):
                relay_socket(socket, target)
        finally:
            socket.close()
    else:
        request.environ[SESSION] = functools.partial(
            _serve, services().live, socket, db_id, query, g.request_id
        )
    return Response(status=101)


def _serve(
    live: LiveService, socket: WebSocket, db_id: str, query: SocketQuery, request_id: str
) -> None:
    """The socket's session; its log lines carry the id of the request that opened it."""
    logged_as = logs.REQUEST_ID.set(request_id)
    try:
        live.serve(socket, db_id, query)
    finally:
        socket.close()
        logs.REQUEST_ID.reset(logged_as)


#: Where :func:`changes` leaves the session of the socket it accepted.
SESSION = "dxc.socket_session"


class ServeSockets:
    """Runs the session of an accepted socket once its request ended.

    A socket lives for hours, mostly idle; served inside the view, it would keep
    Flask's request and application contexts, the parsed request and their frames
    for as long, as it would the WSGI environ: ~5 KiB of the ~30 a socket may cost.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        answer = self.app(environ, start_response)
        session = environ.pop(SESSION, None)
        if session is None:
            return answer
        if hasattr(answer, "close"):
            answer.close()
        del answer
        gunicorn = "gunicorn.socket" in environ
        environ.clear()  # the request's headers and variables are of no further use
        try:
            session()
        except Exception:  # after the 101, no HTTP answer may follow: log it, close
            log.exception("a /changes socket failed")
        if gunicorn:
            raise StopIteration  # gunicorn closes the connection without writing anything
        return []  # werkzeug's server closes it
