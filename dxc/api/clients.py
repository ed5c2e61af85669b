"""Managing a database's API clients: ``/clients``, ``/clients/add|delete|rotate``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("clients", __name__)
