"""E-mail and web templates: ``/<db>/templates/pull|push|reset|test-send``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("templates", __name__)
