"""Thin Flask blueprints over the protocol and storage code."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from dxc import tson
from dxc.services import Services


def services() -> Services:
    """The :class:`Services` of the running app."""
    return current_app.extensions["dxc"]


def json_body(force: bool = False) -> Any:
    """The request's JSON body, None if it is not JSON (the logic says what it
    expected); a 400 if it holds text or numbers that no column stores: these
    bodies (logins, administration) are stored as they are, not as TSON."""
    body = request.get_json(force=force, silent=True)
    tson.check_plain(body)
    return body
