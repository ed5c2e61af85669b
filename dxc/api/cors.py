"""CORS from each database's origin whitelist (``npx dexie-cloud whitelist``).

A browser request to ``/<db>/…`` gets CORS headers only if its ``Origin`` is
on the whitelist of ``<db>`` or on the installation-wide ``DXC_CORS_ORIGINS``
list (``*`` there allows every origin, ``loopback`` every page served from
this machine: the development default). Any other
path (``/service/…``, ``/health``, ``/ready``) has no whitelist, so only
``DXC_CORS_ORIGINS`` applies. Requests without ``Origin`` (the CLI, servers)
are not subject to any of this. ``/sync`` is fetched with
``credentials: 'include'``, so an allowed origin is echoed (never ``*``)
with ``Allow-Credentials``; a refused one gets no CORS headers and the
browser blocks the response.
"""

from __future__ import annotations

import re

from flask import Flask, Response, current_app, request

from dxc.api import services
from dxc.config import LOOPBACK_ORIGINS
from dxc.manage.whitelist import OriginCache, normalise

ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Accept"
EXPOSE_HEADERS = "Ratelimit-Limit, Ratelimit-Remaining, Ratelimit-Reset"
MAX_AGE = "600"
#: First path segments that are not database ids.
NOT_DATABASES = frozenset({"service", "health", "ready", "static"})
#: What ``loopback`` admits (after :func:`normalise`): only these exact hosts, any port.
_LOOPBACK = re.compile(r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?")


def database_in_path(path: str) -> str | None:
    """The ``<db>`` of a ``/<db>/…`` path, None for the installation's own paths."""
    first = path.lstrip("/").split("/", 1)[0]
    return first if first and first not in NOT_DATABASES else None


def origin_allowed(origin: str, db_id: str | None) -> bool:
    """Whether a browser at ``origin`` may use database ``db_id`` (None: no database)."""
    installation = services().settings.cors_origins
    wanted = normalise(origin)
    if (
        "*" in installation
        or wanted in {normalise(o) for o in installation}
        or (LOOPBACK_ORIGINS in installation and _LOOPBACK.fullmatch(wanted) is not None)
    ):
        return True
    return db_id is not None and origin_cache().allows(db_id, origin)


def origin_cache() -> OriginCache:
    return current_app.extensions["dxc_origins"]


def register_cors(app: Flask) -> None:
    app.extensions["dxc_origins"] = OriginCache(app.extensions["dxc"].control)

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
