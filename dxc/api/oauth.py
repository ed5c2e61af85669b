"""Sign-in with OAuth providers: ``/auth-providers`` and the broker's two pages.

``/oauth/login/<provider>`` and ``/oauth/callback/<provider>`` are browser
navigations, not ``fetch`` calls: they answer redirects, or an HTML page
when no redirect is safe (docs/oauth.md).
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from dxc.api import services
from dxc.api.cors import origins
from dxc.auth.oauth import LoginRefused, OAuthBroker, RedirectPolicy

bp = Blueprint("oauth", __name__)


def register_oauth(app: Flask) -> None:
    dxc = app.extensions["dxc"]
    app.extensions["dxc_oauth"] = OAuthBroker(dxc.control, dxc.settings)
    app.register_blueprint(bp)


def broker() -> OAuthBroker:
    return current_app.extensions["dxc_oauth"]


@bp.get("/<db_id>/auth-providers")
def auth_providers(db_id: str) -> Response:
    services().router.shard_for(db_id)  # 404 for an unknown database
    return jsonify(broker().providers_answer(db_id))


@bp.get("/<db_id>/oauth/login/<provider>")
def login(db_id: str, provider: str) -> Response:
    services().router.shard_for(db_id)
    rule = origins()
    policy = RedirectPolicy(
        origin_allowed=lambda origin: rule.allowed(origin, db_id),
        whitelist=rule.whitelists.origins(db_id),
    )
    try:
        target = broker().begin(db_id, provider, request.args.get("redirect_uri"), policy)
    except LoginRefused as refused:
        return _error_page(refused)
    return _redirect(target)


@bp.route("/<db_id>/oauth/callback/<provider>", methods=["GET", "POST"])
def callback(db_id: str, provider: str) -> Response:
    """The provider's answer: a query string, or a posted form (Apple's ``form_post``)."""
    services().router.shard_for(db_id)
    params = request.form if request.method == "POST" else request.args
    try:
        target = broker().finish(db_id, provider, params.to_dict())
    except LoginRefused as refused:
        return _error_page(refused)
    return _redirect(target)


class _Redirect(Response):
    """A redirect to the target as given: Werkzeug's IRI clean-up would turn an app's
    ``myapp://?dxc-auth=…`` into ``myapp:?dxc-auth=…``, which deep links do not match."""

    def get_wsgi_headers(self, environ: Any) -> Any:
        headers = super().get_wsgi_headers(environ)
        headers["Location"] = quote(self.headers["Location"], safe=_URI_CHARACTERS)
        return headers


#: What stays as it is in a URI: the reserved and unreserved characters, and ``%`` escapes.
_URI_CHARACTERS = ":/?#[]@!$&'()*+,;=%-._~"


def _redirect(target: str) -> Response:
    response = _Redirect(status=302)
    response.headers["Location"] = target
    return _no_store(response)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _error_page(refused: LoginRefused) -> Response:
    page = (
        "<!doctype html><meta charset='utf-8'><title>Sign-in failed</title>"
        f"<h1>Sign-in failed</h1><p>{escape(refused.message)}</p>"
    )
    return _no_store(Response(page, refused.status, mimetype="text/html"))
