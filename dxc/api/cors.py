"""CORS exactly as the real client needs it.

``/sync`` is fetched with ``credentials: 'include'``, so an allowed origin is
echoed (never ``*``) together with ``Allow-Credentials``, and preflights allow
the ``Authorization`` header. Which origins are allowed comes from
``DXC_CORS_ORIGINS`` ("*" allows every origin) until per-database whitelists
exist.
"""

from __future__ import annotations

from flask import Flask, Response, request

from dxc.api import services

ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Accept"
EXPOSE_HEADERS = "Ratelimit-Limit, Ratelimit-Remaining, Ratelimit-Reset"
MAX_AGE = "600"


def origin_allowed(origin: str) -> bool:
    allowed = services().settings.cors_origins
    return "*" in allowed or origin.rstrip("/") in allowed


def register_cors(app: Flask) -> None:
    @app.before_request
    def preflight() -> Response | None:
        if request.method != "OPTIONS":
            return None
        response = Response(status=204)
        origin = request.headers.get("Origin")
        if origin and origin_allowed(origin):
            response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", ALLOW_HEADERS
            )
            response.headers["Access-Control-Max-Age"] = MAX_AGE
        return response

    @app.after_request
    def allow_origin(response: Response) -> Response:
        origin = request.headers.get("Origin")
        response.vary.add("Origin")
        if origin and origin_allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response
