"""Refusals of the administration tasks, free of HTTP.

The tasks (``dxc.manage``, ``dxc.rest``) raise these with a message for the
caller; ``dxc.api.errors`` maps each to its status in one place and
``dxc.cli`` prints the message as one line.
"""

from __future__ import annotations


class Refused(Exception):
    """A request a task will not carry out; the message says why."""


class Invalid(Refused):
    """The request is malformed (HTTP 400)."""


class Forbidden(Refused):
    """The caller may not do this (HTTP 403)."""


class NotFound(Refused):
    """What the request names does not exist (HTTP 404)."""


class Conflict(Refused):
    """The current state does not allow it (HTTP 409)."""


class Moving(Refused):
    """The database takes no writes here right now: it moved to another installation, or
    is a copy that has not taken over yet (HTTP 503: the client retries)."""


class Gone(Refused):
    """The database was deleted (``flask dxc delete-db``) and is no longer forwarded
    anywhere (HTTP 410)."""
