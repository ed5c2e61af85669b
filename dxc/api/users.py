"""The users of a database: ``/<db>/users`` (list, read, create, update, delete)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import Forbidden

from dxc import tson
from dxc.api import services
from dxc.api.authorise import authorise
from dxc.auth.scopes import ACCESS_DB, READ_ALL, WRITE_ALL
from dxc.rest import user_admin

bp = Blueprint("users", __name__)


@bp.get("/<db_id>/users")
def list_users(db_id: str) -> Response:
    authorise(db_id, *READ_ALL)
    return jsonify(user_admin.list_users(services(), db_id, request.args.to_dict()))


@bp.get("/<db_id>/users/<path:user_id>")
def get_user(db_id: str, user_id: str) -> Response:
    authorise(db_id, *READ_ALL)
    return jsonify(user_admin.get_user(services(), db_id, user_id))


@bp.post("/<db_id>/users")
def save_users(db_id: str) -> Response:
    authorise(db_id, *WRITE_ALL)
    body = tson.loads(request.get_data())
    tson.check_plain(body)  # user ids, e-mails and names are stored as they are
    return jsonify(user_admin.save_users(services(), db_id, body))


@bp.delete("/<db_id>/users/<path:user_id>")
def delete_user(db_id: str, user_id: str) -> Response:
    """By a caller with the global scopes, or by the user themself ("delete my account")."""
    claims = authorise(db_id)
    own = claims.sub == user_id and ACCESS_DB in claims.scopes
    if not own and not claims.scopes.issuperset(WRITE_ALL):
        raise Forbidden("only the user themself or a token with GLOBAL_WRITE may delete a user")
    return jsonify(user_admin.erase_user(services(), db_id, user_id))
