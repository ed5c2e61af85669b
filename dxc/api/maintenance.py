"""Destructive administration: ``/delete-db``, ``/undelete-db``, ``/clear-*``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import BadRequest

from dxc.api import json_body, services
from dxc.api.authorise import authorise
from dxc.auth.scopes import DELETE_DB, GLOBAL_WRITE, MANAGE_DB
from dxc.manage import maintenance

bp = Blueprint("maintenance", __name__)


@bp.post("/<db_id>/delete-db")
def delete_db(db_id: str) -> Response:
    authorise(db_id, DELETE_DB)
    hard = _body().get("hard", False)
    if not isinstance(hard, bool):
        raise BadRequest("hard must be true or false")
    return jsonify(message=maintenance.delete_database(services(), db_id, hard))


@bp.post("/<db_id>/undelete-db")
def undelete_db(db_id: str) -> Response:
    authorise(db_id, MANAGE_DB)
    _body()
    return jsonify(message=maintenance.undelete_database(services(), db_id))


@bp.post("/<db_id>/clear-table")
def clear_table(db_id: str) -> Response:
    authorise(db_id, GLOBAL_WRITE)
    table = _text(_body(), "table")
    count = maintenance.clear_table(services(), db_id, table)
    return jsonify(message=f"Table {table!r} cleared.", deletedCount=count)


@bp.post("/<db_id>/clear-realm")
def clear_realm(db_id: str) -> Response:
    authorise(db_id, GLOBAL_WRITE)
    realm_id = _text(_body(), "realmId")
    count = maintenance.clear_realm(services(), db_id, realm_id)
    return jsonify(message=f"Realm {realm_id!r} cleared: {count} objects deleted.")


def _body() -> dict[str, Any]:
    if not request.get_data():
        return {}
    body = json_body(force=True)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name} must be a non-empty string")
    return value
