"""The browser origins a database allows: ``POST /<db>/whitelist`` (:mod:`dxc.manage.whitelist`)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from dxc.api import json_body, services
from dxc.api.authorise import authorise
from dxc.api.cors import origins
from dxc.auth.scopes import MANAGE_DB
from dxc.manage.whitelist import whitelist

bp = Blueprint("whitelist", __name__)


@bp.post("/<db_id>/whitelist")
def change_whitelist(db_id: str) -> Response:
    authorise(db_id, MANAGE_DB)
    answer = whitelist(services(), db_id, json_body())
    origins().whitelists.forget(db_id)  # this worker sees the change at once, the others soon
    return jsonify(answer)
