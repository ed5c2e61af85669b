"""Per request: an id (``X-Request-Id``), an access-log line and the HTTP metrics.

The access line names the method, path, redacted query, status, duration and
database; it never carries a header, so neither ``Authorization`` nor a
cookie can reach the log, and the ``token=`` of a ``/changes`` URL is
replaced (``dxc.logs.redact_query``). Metrics are labelled by Flask endpoint,
so unknown paths all count as ``unmatched`` instead of one series each.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from dxc import logs, metrics

access_log = logging.getLogger("dxc.access")
HEADER = "X-Request-Id"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def register_observability(app: Flask) -> None:
    """Register first, so that the id is set before any other hook can log or answer."""
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_end)


def _begin() -> None:
    g.started = time.perf_counter()
    g.request_id = logs.request_id(request.headers.get(HEADER))
    g.request_id_token = logs.REQUEST_ID.set(g.request_id)


def _finish(response: Response) -> Response:
    seconds = time.perf_counter() - g.started
    endpoint = request.endpoint or "unmatched"
    method = request.method if request.method in METHODS else "other"
    metrics.HTTP_REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
    metrics.HTTP_DURATION.labels(endpoint).observe(seconds)
    response.headers[HEADER] = g.request_id
    query = logs.redact_query(request.query_string.decode("latin-1"))
    db_id = (request.view_args or {}).get("db_id")
    access_log.info(
        "%s %s%s %d %.1fms db=%s", method, request.path, f"?{query}" if query else "",
        response.status_code, seconds * 1000, db_id or "-",
        extra={
            "method": method,
            "path": request.path,
            "query": query,
            "endpoint": endpoint,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 1),
            "db_id": db_id,
            "remote_addr": request.remote_addr,
        },
    )
    return response


def _end(_error: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        logs.REQUEST_ID.reset(token)
