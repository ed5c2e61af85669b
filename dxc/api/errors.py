"""Every error leaves the server as JSON with a message and the right status."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from dxc.auth.tokens import InvalidToken
from dxc.protocol import ProtocolError
from dxc.storage.router import UnknownDatabase
from dxc.tson import TSONError

log = logging.getLogger(__name__)
#: Seconds a client is asked to wait after a 503 (a database restart takes a few).
RETRY_AFTER_SECONDS = 5


def error_response(status: int, error: str, message: str) -> Response:
    response = jsonify(error=error, message=message)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        name = (error.name or "error").lower().replace(" ", "_")
        return error_response(error.code or 500, name, error.description or error.name)

    @app.errorhandler(TSONError)
    @app.errorhandler(ProtocolError)
    def bad_request(error: ValueError) -> Response:
        return error_response(400, "bad_request", str(error))

    @app.errorhandler(RecursionError)
    def too_deep(error: RecursionError) -> Response:
        # The JSON decoder gives up on very deep nesting (request.get_json()).
        return error_response(400, "bad_request", "the JSON body is nested too deeply")

    @app.errorhandler(UnknownDatabase)
    def unknown_database(error: UnknownDatabase) -> Response:
        return error_response(404, "unknown_database", f"there is no database {error.args[0]!r}")

    @app.errorhandler(InvalidToken)
    def invalid_token(error: InvalidToken) -> Response:
        response = error_response(401, "invalid_token", str(error))
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response

    @app.errorhandler(DBAPIError)
    def database_error(error: DBAPIError) -> Response:
        if not (isinstance(error, OperationalError) or error.connection_invalidated):
            return unexpected(error)  # a bug (say an IntegrityError), not an outage
        # The driver's first line names host and port, never the password; the
        # statement and its parameters (client data) stay out of the log.
        reason = (str(error.orig).strip().splitlines() or [""])[0][:200]
        log.warning("database unavailable: %s: %s", type(error.orig).__name__, reason)
        response = error_response(
            503, "unavailable", "the database is unreachable right now; retry shortly"
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the server failed; it has been logged")
