"""Moving data in and out: ``/<db>/import*`` and ``/<db>/export*``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("transfer", __name__)
