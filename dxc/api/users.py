"""The users of a database: ``/<db>/users`` (list, read, create, update, delete)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("users", __name__)
