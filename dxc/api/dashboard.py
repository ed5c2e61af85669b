"""rq-dashboard at ``/admin/rq``, behind HTTP Basic with ``DXC_ADMIN_PASSWORD``.

Mounted only when both ``REDIS_URL`` (there is a queue to show) and the
password are set. The password is installation-wide on purpose: a database's
MANAGE_DB token must not reveal the jobs of every database. Any user name is
accepted. Because a browser resends Basic credentials by itself, a request
that changes something (requeue, delete) must come from the dashboard's own
page (same ``Origin``), which stops cross-site forgeries.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

import rq_dashboard
from flask import Flask, Response, request
from rq_dashboard.web import setup_rq_connection

from dxc.api.errors import error_response
from dxc.config import Settings

PREFIX = "/admin/rq"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def register_dashboard(app: Flask, settings: Settings) -> None:
    if not (settings.redis_url and settings.admin_password):
        return
    app.config["RQ_DASHBOARD_REDIS_URL"] = settings.redis_url
    setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
    password = settings.admin_password

    @app.before_request
    def admit() -> Response | None:
        if request.blueprint != rq_dashboard.blueprint.name:
            return None
        if not _password_matches(password):
            response = error_response(401, "unauthorized", "the dashboard needs the admin password")
            response.headers["WWW-Authenticate"] = 'Basic realm="dxc admin", charset="UTF-8"'
            return response
        if request.method not in SAFE_METHODS and not _same_origin():
            return error_response(403, "forbidden", "changes must come from the dashboard's page")
        return None


def _password_matches(password: str) -> bool:
    auth = request.authorization
    given = (auth.password or "") if auth and auth.type == "basic" else ""
    return hmac.compare_digest(given.encode(), password.encode())


def _same_origin() -> bool:
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    parts = urlsplit(source)
    return bool(parts.netloc) and parts.netloc == request.host
