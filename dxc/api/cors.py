"""CORS from each database's origin whitelist (``npx dexie-cloud whitelist``).

A browser request to ``/<db>/…`` gets CORS headers only if its ``Origin`` is
on the whitelist of ``<db>`` or on the installation-wide ``DXC_CORS_ORIGINS``
list (the rule is :mod:`dxc.access.origins`). Any other
path (``/service/…``, ``/health``, ``/ready``) has no whitelist, so only
``DXC_CORS_ORIGINS`` applies. Requests without ``Origin`` (the CLI, servers)
are not subject to any of this. ``/sync`` is fetched with
``credentials: 'include'``, so an allowed origin is echoed (never ``*``)
with ``Allow-Credentials``; a refused one gets no CORS headers and the
browser blocks the response.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request

from dxc.access.origins import OriginCache, Origins

ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Accept"
EXPOSE_HEADERS = "Ratelimit-Limit, Ratelimit-Remaining, Ratelimit-Reset"
MAX_AGE = "600"
#: First path segments that are not database ids.
NOT_DATABASES = frozenset({"service", "health", "ready", "static"})


def database_in_path(path: str) -> str | None:
    """The ``<db>`` of a ``/<db>/…`` path, None for the installation's own paths."""
    first = path.lstrip("/").split("/", 1)[0]
    return first if first and first not in NOT_DATABASES else None


def origin_allowed(origin: str, db_id: str | None) -> bool:
    """Whether a browser at ``origin`` may use database ``db_id`` (None: no database)."""
    return origins().allowed(origin, db_id)


def origins() -> Origins:
    """This process's origin rule, with its cache of the whitelists."""
    return current_app.extensions["dxc_origins"]


def register_cors(app: Flask) -> None:
    services = app.extensions["dxc"]
    app.extensions["dxc_origins"] = Origins(
        services.settings.cors_origins, OriginCache(services.control)
    )

    @app.before_request
    def preflight() -> Response | None:
        if request.method != "OPTIONS":
            return None
        response = Response(status=204)
        origin = request.headers.get("Origin")
        if origin and origin_allowed(origin, database_in_path(request.path)):
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
        if origin and origin_allowed(origin, database_in_path(request.path)):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response
