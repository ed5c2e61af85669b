"""``npx dexie-cloud whitelist``: the browser origins a database allows.

Origins are stored normalised (no trailing ``/``, lower-case scheme and
host) because browsers send ``location.origin`` that way and the match is
exact. An ``app:<name>`` entry (Electron-like shells) also admits the
``null`` / ``file://`` origins such shells send.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import Engine
from werkzeug.exceptions import BadRequest

from dxc.services import Services
from dxc.storage import origins as origin_store
from dxc.tson import text_problem

FORM_MESSAGE = (
    "Given origin should be of the form: https://hostname, http://localhost:<port>, "
    "capacitor://..., ionic://..., chrome-extension://... or app:<App name>. "
    "Use the --force flag to skip this check and add a custom origin."
)
_VALID = re.compile(
    r"https://[a-z0-9-]+(\.[a-z0-9-]+)*(:\d{1,5})?"
    r"|http://localhost(:\d{1,5})?"
    r"|(capacitor|ionic|chrome-extension)://\S+"
    r"|app:\S.*"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ORIGIN_CHARS = 512
#: Origins that Electron-like shells send; allowed when the database has an ``app:`` entry.
APP_ORIGINS = ("null", "file://")


def normalise(origin: str) -> str:
    """``HTTPS://Example.COM/`` → ``https://example.com``; ``App:Name`` → ``app:Name``."""
    origin = origin.strip().rstrip("/")
    scheme, sep, rest = origin.partition("://")
    if sep:
        host, slash, path = rest.partition("/")
        return f"{scheme.lower()}://{host.lower()}{slash}{path}"
    if origin[:4].lower() == "app:":
        return "app:" + origin[4:].strip()
    return origin


def whitelist(services: Services, db_id: str, body: Any) -> list[str] | int:
    """List (no origin), add or delete; the list, or how many origins were added/removed."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object {origin?, delete?, force?}")
    origin, remove, force = body.get("origin"), _flag(body, "delete"), _flag(body, "force")
    if origin is None:
        if remove:
            raise BadRequest("give the origin to delete")
        with services.control.connect() as connection:
            connection.execution_options(read_only=True)
            return origin_store.list_origins(connection, db_id)
    if not isinstance(origin, str) or not origin.strip():
        raise BadRequest("origin must be a non-empty string")
    origin = normalise(origin)
    if len(origin) > MAX_ORIGIN_CHARS or _CONTROL.search(origin):
        raise BadRequest(f"origin must be at most {MAX_ORIGIN_CHARS} printable characters")
    with services.control.begin() as connection:
        if remove:
            count = origin_store.delete_origin(connection, db_id, origin)
        else:
            if not force and not _VALID.fullmatch(origin):
                raise BadRequest(FORM_MESSAGE)
            count = origin_store.add_origin(connection, db_id, origin)
    return count


def _flag(body: dict[str, Any], name: str) -> bool:
    """The CLI sends the string ``'true'``; its type declares a boolean: accept both."""
    value = body.get(name)
    if value in (None, False, "false", ""):
        return False
    if value is True or value == "true":
        return True
    raise BadRequest(f"{name} must be true or false")


class OriginCache:
    """Each database's whitelist, read at most every ``ttl`` seconds per process.

    The process that makes a change forgets its entry (``forget``), so it
    sees the change at once; other worker processes see it within ``ttl``
    seconds.
    """

    TTL_SECONDS = 2.0
    MAX_ENTRIES = 4096

    def __init__(self, control: Engine, ttl: float = TTL_SECONDS) -> None:
        self.control = control
        self.ttl = ttl
        self._entries: dict[str, tuple[float, frozenset[str]]] = {}

    def origins(self, db_id: str) -> frozenset[str]:
        if text_problem(db_id):  # a %00 in the URL: no database, and no query may carry it
            return frozenset()
        now = time.monotonic()
        entry = self._entries.get(db_id)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        with self.control.connect() as connection:
            connection.execution_options(read_only=True)
            found = frozenset(origin_store.list_origins(connection, db_id))
        if len(self._entries) >= self.MAX_ENTRIES:  # unknown ids in URLs must not pile up
            self._entries.clear()
        self._entries[db_id] = (now, found)
        return found

    def allows(self, db_id: str, origin: str) -> bool:
        """Whether the whitelist of ``db_id`` admits a request from ``origin``."""
        allowed = self.origins(db_id)
        if origin.strip() in APP_ORIGINS:
            return any(o.startswith("app:") for o in allowed)
        return normalise(origin) in allowed

    def forget(self, db_id: str) -> None:
        self._entries.pop(db_id, None)
