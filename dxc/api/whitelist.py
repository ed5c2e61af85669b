"""The browser origins a database allows: ``POST /<db>/whitelist``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("whitelist", __name__)
