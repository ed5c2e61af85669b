"""The REST data API: ``/<db>/all``, ``/<db>/my`` and ``/<db>/public`` (``docs/rest-api.md``)."""

from __future__ import annotations

from flask import Blueprint, Response, request, stream_with_context

from dxc import tson
from dxc.access import ANONYMOUS
from dxc.api import services
from dxc.api.authorise import authorise, principal
from dxc.auth.scopes import ACCESS_DB, READ_ALL, WRITE_ALL
from dxc.rest.data_api import ALL, MY, PUBLIC, DataApi, View

bp = Blueprint("rest", __name__)

VIEWS = f"any({ALL},{MY},{PUBLIC})"


def _view(db_id: str, kind: str, write: bool) -> View:
    """The caller's view, after checking its token carries the scopes ``kind`` needs."""
    if kind == PUBLIC and not write:
        return View(PUBLIC, ANONYMOUS)  # public reads need no token
    if kind == MY:
        # /my acts as the subject under the access rules, whatever global scopes it has.
        claims = authorise(db_id, ACCESS_DB, action="read or write as a user")
        return View(MY, principal(claims, frozenset({ACCESS_DB})))
    needed, action = (WRITE_ALL, "mutate any data") if write else (READ_ALL, "read all data")
    return View(kind, principal(authorise(db_id, *needed, action=action)))


def _json(text: str, status: int = 200) -> Response:
    return Response(text, status, mimetype="application/json")


@bp.get(f"/<db_id>/<{VIEWS}:kind>/<table>")
def list_objects(db_id: str, kind: str, table: str) -> Response:
    view = _view(db_id, kind, write=False)
    pieces = DataApi(services()).list_objects(db_id, view, table, request.args.to_dict())
    return Response(stream_with_context(pieces), mimetype="application/json")


@bp.get(f"/<db_id>/<{VIEWS}:kind>/<table>/<path:pk>")
def get_object(db_id: str, kind: str, table: str, pk: str) -> Response:
    view = _view(db_id, kind, write=False)
    return _json(DataApi(services()).get_object(db_id, view, table, pk))


@bp.post(f"/<db_id>/<{VIEWS}:kind>/<table>")
def put_objects(db_id: str, kind: str, table: str) -> Response:
    view = _view(db_id, kind, write=True)
    body = tson.loads(request.get_data())
    return _json(DataApi(services()).put_objects(db_id, view, table, body))


@bp.delete(f"/<db_id>/<{VIEWS}:kind>/<table>/<path:pk>")
def delete_object(db_id: str, kind: str, table: str, pk: str) -> Response:
    view = _view(db_id, kind, write=True)
    DataApi(services()).delete_object(db_id, view, table, pk)
    return Response(status=204)
