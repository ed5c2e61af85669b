"""The browser origins a database allows: ``POST /<db>/whitelist`` (:mod:`dxc.manage.whitelist`)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from dxc.api import json_body, services
from dxc.api.bearer import require_scope
from dxc.api.cors import origin_cache
from dxc.manage.whitelist import whitelist

bp = Blueprint("whitelist", __name__)


@bp.post("/<db_id>/whitelist")
def change_whitelist(db_id: str) -> Response:
    services().router.shard_for(db_id)
    require_scope(db_id, "MANAGE_DB")
    answer = whitelist(services(), db_id, json_body())
    origin_cache().forget(db_id)  # this worker sees the change at once, the others soon
    return jsonify(answer)
