"""Managing a database's API clients: ``/clients``, ``/clients/add|delete|rotate``.

What ``npx dexie-cloud clients|authorize|unauthorize|revoke|rotate`` call
(:mod:`dxc.manage.clients`); ``/clients/connect`` is in :mod:`dxc.api.auth`.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from dxc.api import json_body, services
from dxc.api.authorise import authorise
from dxc.auth.scopes import MANAGE_DB
from dxc.manage import clients

bp = Blueprint("clients", __name__)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<db_id>/clients")
def list_clients(db_id: str) -> Response:
    authorise(db_id, MANAGE_DB)
    return _no_store(jsonify(clients.list_clients(services(), db_id)))


@bp.post("/<db_id>/clients/add")
def add_client(db_id: str) -> Response:
    caller = authorise(db_id, MANAGE_DB)
    body = json_body()
    return _no_store(jsonify(clients.add_client(services(), db_id, caller, body)))


@bp.post("/<db_id>/clients/delete")
def delete_clients(db_id: str) -> Response:
    caller = authorise(db_id, MANAGE_DB)
    count = clients.delete_clients(services(), db_id, caller, json_body())
    return jsonify(ok=True, numClients=count)


@bp.post("/<db_id>/clients/rotate")
def rotate_client(db_id: str) -> Response:
    """MANAGE_DB even for the caller's own client: spec B2.2 puts all of ``/clients*`` under it."""
    caller = authorise(db_id, MANAGE_DB)
    body = json_body()
    return _no_store(jsonify(clients.rotate_client(services(), db_id, caller, body)))
