"""Which browser origins may use a database: its whitelist (``npx dexie-cloud whitelist``)
and the installation-wide ``DXC_CORS_ORIGINS``.

Origins are compared normalised (no trailing ``/``, lower-case scheme and
host) because browsers send ``location.origin`` that way and the match is
exact. An ``app:<name>`` entry (Electron-like shells) also admits the
``null`` / ``file://`` origins such shells send. CORS (``dxc.api.cors``) and
the ``/changes`` WebSocket ask :meth:`Origins.allowed` on every request, so
each process keeps the whitelists for a moment.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from sqlalchemy import Engine

from dxc.config import LOOPBACK_ORIGINS
from dxc.storage import origins as origin_store
from dxc.tson import text_problem

#: Origins that Electron-like shells send; allowed when the database has an ``app:`` entry.
APP_ORIGINS = ("null", "file://")
#: What ``loopback`` admits (after :func:`normalise`): only these exact hosts, any port.
_LOOPBACK = re.compile(r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?")


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


class Origins:
    """The installation's rule: ``DXC_CORS_ORIGINS`` first, then the database's whitelist."""

    def __init__(self, installation: Iterable[str], whitelists: OriginCache) -> None:
        self.installation = frozenset(installation)
        self._normalised = frozenset(normalise(o) for o in self.installation)
        self.whitelists = whitelists

    def allowed(self, origin: str, db_id: str | None) -> bool:
        """Whether a browser at ``origin`` may use database ``db_id`` (None: no database).

        ``*`` in ``DXC_CORS_ORIGINS`` allows every origin, ``loopback`` every
        page served from this machine.
        """
        wanted = normalise(origin)
        if (
            "*" in self.installation
            or wanted in self._normalised
            or (LOOPBACK_ORIGINS in self.installation and _LOOPBACK.fullmatch(wanted) is not None)
        ):
            return True
        return db_id is not None and self.whitelists.allows(db_id, origin)
