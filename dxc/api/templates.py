"""E-mail and web templates: ``/<db>/templates/pull|push|reset|test-send`` (MANAGE_DB)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from dxc.api import services
from dxc.api.authorise import authorise
from dxc.auth.scopes import MANAGE_DB
from dxc.manage import templates
from dxc.sync.invites import request_origin

bp = Blueprint("templates", __name__)


@bp.before_app_request
def _remember_origin() -> None:
    """Invitation mails name the app the inviter used: its Origin (see dxc.sync.invites)."""
    request_origin.set(request.headers.get("Origin"))


def _body() -> Any:
    """The JSON body; None if it is not JSON (the logic says what it expected)."""
    return request.get_json(silent=True)


@bp.get("/<db_id>/templates/pull")
def pull(db_id: str) -> Response:
    authorise(db_id, MANAGE_DB)
    return jsonify(templates.pull(services(), db_id))


@bp.post("/<db_id>/templates/push")
def push(db_id: str) -> Response:
    authorise(db_id, MANAGE_DB)
    count = templates.push(services(), db_id, _body())
    return jsonify(ok=True, numUpdatedTemplates=count)


@bp.post("/<db_id>/templates/reset")
def reset(db_id: str) -> Response:
    authorise(db_id, MANAGE_DB)
    return jsonify(ok=True, numResetTemplates=templates.reset(services(), db_id))


@bp.post("/<db_id>/templates/test-send")
def test_send(db_id: str) -> Response:
    caller = authorise(db_id, MANAGE_DB)
    receiver = templates.send_test_mail(services(), caller, _body())
    return jsonify(ok=True, emailReceiver=receiver)
