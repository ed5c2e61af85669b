"""The Flask application factory: ``flask --app app …`` and ``wsgi.py`` use it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from dxc.api.auth import bp as auth_bp
from dxc.api.blobs import bp as blobs_bp
from dxc.api.changes import bp as changes_bp
from dxc.api.clients import bp as clients_bp
from dxc.api.cors import register_cors
from dxc.api.dashboard import register_dashboard
from dxc.api.database import bp as database_bp
from dxc.api.errors import ReadableBody, register_error_handlers
from dxc.api.forward import register_forwarding
from dxc.api.health import bp as health_bp
from dxc.api.home import bp as home_bp
from dxc.api.maintenance import bp as maintenance_bp
from dxc.api.metrics import bp as metrics_bp
from dxc.api.oauth import register_oauth
from dxc.api.observability import register_observability
from dxc.api.rest import bp as rest_bp
from dxc.api.templates import bp as templates_bp
from dxc.api.transfer import bp as transfer_bp
from dxc.api.users import bp as users_bp
from dxc.api.whitelist import bp as whitelist_bp
from dxc.cli import dxc_cli
from dxc.config import Settings, settings_or_exit
from dxc.logs import configure_logging
from dxc.services import build_services

_SLASHES = re.compile("/{2,}")


class CollapseSlashes:
    """Route ``//sync`` like ``/sync``: clients concatenate URLs verbatim.

    Werkzeug would answer a doubled slash with a redirect, which a browser
    refuses to follow for a preflighted ``POST``.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["PATH_INFO"] = _SLASHES.sub("/", environ.get("PATH_INFO", ""))
        return self.app(environ, start_response)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or settings_or_exit()
    app = Flask(__name__, instance_path=str(settings.instance_path.resolve()))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["dxc"] = build_services(settings)
    app.wsgi_app = CollapseSlashes(app.wsgi_app)  # type: ignore[method-assign]
    app.wsgi_app = ReadableBody(app.wsgi_app)  # type: ignore[method-assign]
    if settings.proxy_hops:  # the client's address, for per-address rate limits
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)  # type: ignore[method-assign]
    register_observability(app)
    register_error_handlers(app)
    register_cors(app)
    register_forwarding(app)
    register_oauth(app)
    for blueprint in (
        health_bp, home_bp, database_bp, auth_bp, changes_bp, clients_bp, whitelist_bp, transfer_bp,
        maintenance_bp, templates_bp, rest_bp, users_bp, metrics_bp, blobs_bp,
    ):
        app.register_blueprint(blueprint)
    register_dashboard(app, settings)
    app.cli.add_command(dxc_cli)
    configure_logging(settings.log_format)
    return app
