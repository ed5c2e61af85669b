"""Managing a database's API clients: ``/clients``, ``/clients/add|delete|rotate``.

What ``npx dexie-cloud clients|authorize|unauthorize|revoke|rotate`` call
(:mod:`dxc.manage.clients`); ``/clients/connect`` is in :mod:`dxc.api.auth`.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from dxc.api import services
from dxc.api.bearer import require_scope
from dxc.manage import clients

bp = Blueprint("clients", __name__)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<db_id>/clients")
def list_clients(db_id: str) -> Response:
    services().router.shard_for(db_id)
    require_scope(db_id, "MANAGE_DB")
    return _no_store(jsonify(clients.list_clients(services(), db_id)))


@bp.post("/<db_id>/clients/add")
def add_client(db_id: str) -> Response:
    services().router.shard_for(db_id)
    caller = require_scope(db_id, "MANAGE_DB")
    body = request.get_json(silent=True)
    return _no_store(jsonify(clients.add_client(services(), db_id, caller, body)))


@bp.post("/<db_id>/clients/delete")
def delete_clients(db_id: str) -> Response:
    services().router.shard_for(db_id)
    require_scope(db_id, "MANAGE_DB")
    count = clients.delete_clients(services(), db_id, request.get_json(silent=True))
    return jsonify(ok=True, numClients=count)


@bp.post("/<db_id>/clients/rotate")
def rotate_client(db_id: str) -> Response:
    """Any client token may rotate itself; another client needs MANAGE_DB (checked there)."""
    services().router.shard_for(db_id)
    caller = require_scope(db_id)
    body = request.get_json(silent=True)
    return _no_store(jsonify(clients.rotate_client(services(), db_id, caller, body)))
