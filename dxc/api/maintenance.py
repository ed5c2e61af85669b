"""Destructive administration: ``/delete-db``, ``/undelete-db``, ``/clear-*``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("maintenance", __name__)
