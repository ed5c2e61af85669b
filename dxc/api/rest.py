"""The REST data API: ``/<db>/all``, ``/<db>/my`` and ``/<db>/public``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("rest", __name__)
