"""Every error leaves the server as JSON with a message and the right status.

Bad input is refused as early as it can be named, with a 4xx that says what
is wrong: path segments and query parameters that no database stores (before
an answer starts to stream), a body that cannot be read (a broken chunked
encoding), a broken WebSocket upgrade. Database errors are told apart: an
outage (no connection, an exhausted pool, a server shutting down) is a 503
the client may retry; an error that the same statement meets again (bad data,
a constraint, a program limit such as PostgreSQL's btree row size) is a 400,
because the real client resends a failed request forever (sync.md §6.3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.routing import WebsocketMismatch
from wsproto.utilities import RemoteProtocolError

from dxc import errors
from dxc.api import services
from dxc.auth.tokens import InvalidToken
from dxc.protocol import ProtocolError
from dxc.storage.engines import UnstorableValue
from dxc.storage.router import NotOnShard, UnknownDatabase
from dxc.tson import TSONError, safe_text, text_problem

log = logging.getLogger(__name__)
#: Seconds a client is asked to wait after a 503 (a database restart takes a few).
RETRY_AFTER_SECONDS = 5
#: Error classes a statement meets again however often it is sent.
PERMANENT_ERRORS = (DataError, IntegrityError, ProgrammingError, NotSupportedError)
#: SQLSTATE classes likewise, whatever class the driver gives them: feature not
#: supported, data exception, integrity constraint, syntax or access rule, and
#: program limit exceeded (psycopg2 calls an index row too large "operational").
PERMANENT_SQLSTATE_CLASSES = frozenset({"0A", "22", "23", "42", "54"})
#: The tasks' refusals (:mod:`dxc.errors`): status and ``error`` of the answer.
REFUSALS: dict[type[errors.Refused], tuple[int, str]] = {
    errors.Invalid: (400, "bad_request"),
    errors.Forbidden: (403, "forbidden"),
    errors.NotFound: (404, "not_found"),
    errors.Conflict: (409, "conflict"),
    errors.Moving: (503, "database_moving"),
    errors.Gone: (410, "database_deleted"),
    errors.Refused: (400, "bad_request"),
}


def error_response(status: int, error: str, message: str) -> Response:
    response = jsonify(error=error, message=message)
    response.status_code = status
    return response


class ReadableBody:
    """WSGI middleware: a request body that cannot be read (gunicorn's
    ``InvalidChunkSize``, a client gone mid-body) is the client's 400, not a 500."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if "wsgi.input" in environ:
            environ["wsgi.input"] = _GuardedInput(environ["wsgi.input"])
        return self.app(environ, start_response)


class _GuardedInput:
    """A ``wsgi.input`` (PEP 3333's four methods, nothing else, so that every read
    goes through them) whose read errors are :class:`BadRequest`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, *args: Any) -> bytes:
        return self._guarded(self._stream.read, *args)

    def readline(self, *args: Any) -> bytes:
        return self._guarded(self._stream.readline, *args)

    def readlines(self, *args: Any) -> list[bytes]:
        return self._guarded(self._stream.readlines, *args)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    @staticmethod
    def _guarded(method: Callable[..., Any], *args: Any) -> Any:
        try:
            return method(*args)
        except Exception as error:
            raise BadRequest(f"the request body could not be read: {error}") from error


def refuse_unstorable_url_text() -> None:
    """A path segment or query parameter with a NUL (``%00``) is refused before any
    handler runs: it would fail inside a statement, maybe after a stream began."""
    named = [(f"the URL's {name}", value) for name, value in (request.view_args or {}).items()]
    for key, value in request.args.items(multi=True):
        named += [("a query parameter name", key), (f"the query parameter {key!r}", value)]
    for what, value in named:
        if isinstance(value, str) and (problem := text_problem(value)):
            raise BadRequest(f"{safe_text(what)} {problem}")


def _is_permanent(error: DBAPIError) -> bool:
    """Whether the statement of ``error`` would fail again however often it is sent."""
    code = getattr(error.orig, "pgcode", None)  # psycopg2's SQLSTATE
    return isinstance(error, PERMANENT_ERRORS) or (
        isinstance(code, str) and code[:2] in PERMANENT_SQLSTATE_CLASSES
    )


def _is_outage(error: DBAPIError) -> bool:
    """Whether ``error`` is the database being unavailable, not the statement's fault."""
    return error.connection_invalidated or (
        isinstance(error, OperationalError | InterfaceError) and not _is_permanent(error)
    )


def register_error_handlers(app: Flask) -> None:
    """The handlers, and the URL check (after observability's hooks, which time
    and log every answer, this one included)."""
    app.before_request(refuse_unstorable_url_text)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        name = (error.name or "error").lower().replace(" ", "_")
        return error_response(error.code or 500, name, error.description or error.name)

    @app.errorhandler(errors.Refused)
    def refused(error: errors.Refused) -> Response:
        status, name = next(REFUSALS[c] for c in type(error).__mro__ if c in REFUSALS)
        response = error_response(status, name, str(error))
        if status == 503:
            response.headers["Retry-After"] = "1"  # a switch-over takes about a second
        return response

    @app.errorhandler(TSONError)
    @app.errorhandler(ProtocolError)
    def bad_request(error: ValueError) -> Response:
        return error_response(400, "bad_request", str(error))

    @app.errorhandler(UnstorableValue)
    def unstorable(error: UnstorableValue) -> Response:
        log.warning("a request value reached the database unchecked: %s", error)
        return error_response(400, "bad_request", f"a value cannot be stored: {error}")

    @app.errorhandler(RemoteProtocolError)
    def broken_upgrade(error: RemoteProtocolError) -> Response:
        # The WebSocket handshake (wsproto, dxc.api.websocket) found the upgrade request wanting.
        return error_response(400, "bad_request", f"not a WebSocket upgrade: {error}")

    @app.errorhandler(WebsocketMismatch)
    def websocket_mismatch(error: WebsocketMismatch) -> Response:
        # Routing tells an upgrade from a plain request by Upgrade and Connection alone.
        return error_response(
            400, "bad_request", "/<db>/changes is a WebSocket, and the only one: it takes"
            " nothing but an upgrade (Upgrade: websocket, Connection: Upgrade)",
        )

    @app.errorhandler(RecursionError)
    def too_deep(error: RecursionError) -> Response:
        # The JSON decoder gives up on very deep nesting (request.get_json()).
        return error_response(400, "bad_request", "the JSON body is nested too deeply")

    @app.errorhandler(UnknownDatabase)
    def unknown_database(error: UnknownDatabase) -> Response:
        return error_response(404, "unknown_database", f"there is no database {error.args[0]!r}")

    @app.errorhandler(NotOnShard)
    def moving_database(error: NotOnShard) -> Response:
        # Its placement changed (a move): read it again next time; the client retries.
        services().router.forget(error.db_id)
        response = error_response(
            503, "unavailable", "the database is being moved to another shard; retry shortly"
        )
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(InvalidToken)
    def invalid_token(error: InvalidToken) -> Response:
        response = error_response(401, "invalid_token", str(error))
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response

    @app.errorhandler(DBAPIError)
    def database_error(error: DBAPIError) -> Response:
        # The driver's first line names the problem (host and port for an outage,
        # never the password); the statement and its parameters, client data and
        # maybe a secret, stay out of the log and the answer.
        reason = (str(error.orig).strip().splitlines() or [""])[0][:200]
        if _is_outage(error):
            log.warning("database unavailable: %s: %s", type(error.orig).__name__, reason)
            return unavailable()
        if _is_permanent(error):
            log.warning("database refused a statement: %s: %s", type(error.orig).__name__, reason)
            return error_response(400, "bad_request", f"the database refused a value: {reason}")
        return unexpected(error)  # say a transaction in a broken state: a bug

    @app.errorhandler(PoolTimeout)
    def pool_exhausted(error: PoolTimeout) -> Response:
        log.warning("database pool exhausted: %s", error)
        return unavailable()

    def unavailable() -> Response:
        response = error_response(
            503, "unavailable", "the database is unreachable right now; retry shortly"
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the server failed; it has been logged")
