"""Logging in: ``/token`` under a database URL and under ``/service``, plus
the two CLI endpoints that need a fresh login token: ``/service/create-db``
and ``/<db>/clients/connect``. ``/auth-providers`` and the OAuth broker are
in :mod:`dxc.api.oauth`."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import Forbidden

from dxc.api import json_body, services
from dxc.api.authorise import authorise
from dxc.auth.api_clients import NotAuthorized, connect_api_client
from dxc.auth.grants import TokenRequestError
from dxc.auth.otp import SERVICE, Caller
from dxc.auth.scopes import CONNECT_CLIENT, CREATE_DB
from dxc.manage.databases import create_database

bp = Blueprint("auth", __name__)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _token(audience: str) -> Response:
    caller = Caller(address=request.remote_addr, origin=request.headers.get("Origin"))
    try:
        answer = services().tokens.handle(audience, json_body(), caller)
    except TokenRequestError as refused:
        return _no_store(_refusal(refused))
    return _no_store(jsonify(answer))


def _refusal(refused: TokenRequestError) -> Response:
    if refused.plain_text:  # the client shows this body verbatim
        return Response(refused.message, refused.status, mimetype="text/plain")
    body = refused.body or {"error": refused.error, "message": refused.message}
    if refused.code:
        body["code"] = refused.code
    response = jsonify(body)
    response.status_code = refused.status
    if refused.retry_after:
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


@bp.post("/<db_id>/token")
def token(db_id: str) -> Response:
    services().router.shard_for(db_id)  # 404 for an unknown database
    return _token(db_id)


@bp.post("/service/token")
def service_token() -> Response:
    return _token(SERVICE)


@bp.post("/service/create-db")
def create_db() -> Response:
    """What ``npx dexie-cloud create --service <url>/service`` calls after its login."""
    claims = authorise(SERVICE, CREATE_DB)
    created = create_database(services(), owner_email=claims.email or claims.sub)
    return _no_store(
        jsonify(url=created.url, clientId=created.client_id, clientSecret=created.client_secret)
    )


@bp.post("/<db_id>/clients/connect")
def connect_client(db_id: str) -> Response:
    """What ``npx dexie-cloud connect|reconnect <db-url>`` call after their e-mail login."""
    claims = authorise(db_id, CONNECT_CLIENT)
    body = json_body()
    require_unverified = isinstance(body, dict) and body.get("requireUnverified") is True
    try:
        client, secret = connect_api_client(
            services().control, db_id, claims.email or claims.sub, require_unverified
        )
    except NotAuthorized as refused:
        raise Forbidden(str(refused)) from None
    return _no_store(jsonify(clientId=client.client_id, clientSecret=secret))
