"""The endpoints under a database URL: ``/<db>/sync``, ``/<db>/token`` and friends."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request, stream_with_context

from dxc.access import ANONYMOUS, Principal
from dxc.api import services
from dxc.api.errors import error_response
from dxc.auth.grants import TokenRequestError
from dxc.auth.tokens import InvalidToken

log = logging.getLogger(__name__)
bp = Blueprint("database", __name__)


def principal() -> Principal:
    """The caller, from its Bearer token; anonymous without one."""
    header = request.headers.get("Authorization")
    if not header:
        return ANONYMOUS
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("the Authorization header must be 'Bearer <token>'")
    claims = services().signer.verify(request.view_args["db_id"], token.strip())
    return Principal(claims.sub, claims.scopes)


@bp.post("/<db_id>/sync")
def sync(db_id: str) -> Response:
    caller = principal()
    outcome, answer = services().sync.sync(db_id, caller, request.get_data())
    log.info(
        "sync db=%s applied=%d rejected=%d", db_id, outcome.applied, outcome.rejected
    )
    return Response(stream_with_context(answer), mimetype="application/json")


@bp.post("/<db_id>/token")
def token(db_id: str) -> Response:
    services().router.shard_for(db_id)  # 404 for an unknown database
    body = request.get_json(silent=True)
    try:
        answer = services().tokens.handle(db_id, body)
    except TokenRequestError as error:
        return error_response(error.status, "token_request_refused", error.message)
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<db_id>/auth-providers")
def auth_providers(db_id: str) -> Response:
    services().router.shard_for(db_id)
    return jsonify(providers=[], otpEnabled=False)
