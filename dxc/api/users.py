"""The users of a database: ``/<db>/users`` (list, read, create, update, delete)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import Forbidden, Unauthorized

from dxc import tson
from dxc.api import services
from dxc.api.bearer import bearer_claims, require_scope
from dxc.manage import user_admin

bp = Blueprint("users", __name__)

READ = ("ACCESS_DB", "GLOBAL_READ")
WRITE = ("ACCESS_DB", "GLOBAL_READ", "GLOBAL_WRITE")


@bp.get("/<db_id>/users")
def list_users(db_id: str) -> Response:
    require_scope(db_id, *READ)
    return jsonify(user_admin.list_users(services(), db_id, request.args.to_dict()))


@bp.get("/<db_id>/users/<path:user_id>")
def get_user(db_id: str, user_id: str) -> Response:
    require_scope(db_id, *READ)
    return jsonify(user_admin.get_user(services(), db_id, user_id))


@bp.post("/<db_id>/users")
def save_users(db_id: str) -> Response:
    require_scope(db_id, *WRITE)
    body = tson.loads(request.get_data())
    tson.check_plain(body)  # user ids, e-mails and names are stored as they are
    return jsonify(user_admin.save_users(services(), db_id, body))


@bp.delete("/<db_id>/users/<path:user_id>")
def delete_user(db_id: str, user_id: str) -> Response:
    """By a caller with the global scopes, or by the user themself ("delete my account")."""
    claims = bearer_claims(db_id)
    if claims is None:
        raise Unauthorized("this request needs an access token (Authorization: Bearer …)")
    own = claims.sub == user_id and "ACCESS_DB" in claims.scopes
    if not own and not all(scope in claims.scopes for scope in WRITE):
        raise Forbidden("only the user themself or a token with GLOBAL_WRITE may delete a user")
    return jsonify(user_admin.erase_user(services(), db_id, user_id))
