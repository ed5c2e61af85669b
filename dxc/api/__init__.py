"""Thin Flask blueprints over the protocol and storage code."""

from __future__ import annotations

from flask import current_app

from dxc.services import Services


def services() -> Services:
    """The :class:`Services` of the running app."""
    return current_app.extensions["dxc"]
