"""Which databases moved away from here (or were deleted: forwarded for a while, then
gone), and which copies here have not taken over yet.

Every request under a database URL asks (``dxc.api.forward``): a moved
database's clients are forwarded to its new installation, and a copy that
has not taken over holds its clients until it has (its source forwards
them here from the moment it stops writing). Both are read from the control
database at most every :data:`RELOAD_SECONDS` per process; a copy that
looks waiting is checked again before a client is held, so a stale answer
only ever delays. Also here: the source's access-token key of a copy that
took over (:class:`dxc.auth.tokens.ForeignIssuer`).
"""

from __future__ import annotations

import time

from sqlalchemy import Engine

from dxc.auth.tokens import ForeignIssuer
from dxc.secret_keys import Keyring
from dxc.storage import redirects, replications, retired
from dxc.storage.clock import utcnow

RELOAD_SECONDS = 2.0
#: How often a held client's copy is checked while it takes over.
HOLD_POLL_SECONDS = 0.1
#: The purpose of the key that seals a replication's source secrets.
SEALING_PURPOSE = "replication-source-secret"


class Relocations:
    def __init__(self, control: Engine, keyring: Keyring) -> None:
        self.control = control
        self._keyring = keyring
        self._moved: dict[str, str] = {}
        self._arriving: set[str] = set()
        self._retired: dict[str, retired.Retired] = {}
        self._loaded = float("-inf")
        self._issuers: dict[str, ForeignIssuer] = {}  # found once, valid for good
        self._no_issuer: dict[str, float] = {}  # db_id -> when last found without

    def reload(self) -> set[str]:
        """Read both lists now; the databases that moved since the last reading."""
        with self.control.connect() as connection:
            moved = redirects.all_targets(connection)
            arriving = replications.waiting_to_switch(connection)
            self._retired = retired.all_retired(connection)
        new = set(moved) - set(self._moved)
        self._moved, self._arriving, self._loaded = moved, arriving, time.monotonic()
        return new

    def _fresh(self) -> None:
        if time.monotonic() - self._loaded > RELOAD_SECONDS:
            self.reload()

    def target_of(self, db_id: str) -> str | None:
        """The URL ``db_id`` moved to (its clients go there), or None."""
        self._fresh()
        if db_id in self._moved:
            return self._moved[db_id]
        deleted = self._retired.get(db_id)  # deleted here, still forwarded for a while
        return deleted.target_url if deleted and deleted.forwarding(utcnow()) else None

    def gone(self, db_id: str) -> bool:
        """Whether ``db_id`` was deleted and is forwarded nowhere (any more): 410."""
        self._fresh()
        deleted = self._retired.get(db_id)
        return deleted is not None and not deleted.forwarding(utcnow())

    def arriving(self, db_id: str) -> bool:
        """Whether ``db_id`` is a copy that has not taken over yet."""
        self._fresh()
        return db_id in self._arriving

    def wait_until_live(self, db_id: str, timeout: float) -> bool:
        """Hold on until the copy ``db_id`` took over (True) or ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        while True:
            with self.control.connect() as connection:
                if db_id not in replications.waiting_to_switch(connection):
                    self._arriving.discard(db_id)
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(HOLD_POLL_SECONDS)

    def foreign_issuer(self, db_id: str) -> ForeignIssuer | None:
        """The source whose tokens ``db_id`` accepts, if it is a copy that took over."""
        if db_id in self._issuers:
            return self._issuers[db_id]
        if time.monotonic() - self._no_issuer.get(db_id, float("-inf")) < RELOAD_SECONDS:
            return None
        with self.control.connect() as connection:
            found = replications.get(connection, db_id)
        if found is None or not (found.sealed_token_key and found.token_issuer
                                 and found.token_audience):
            self._no_issuer[db_id] = time.monotonic()
            return None
        key = self._keyring.fernet(SEALING_PURPOSE).decrypt(found.sealed_token_key.encode())
        issuer = ForeignIssuer(found.token_issuer, found.token_audience, key)
        self._issuers[db_id] = issuer
        return issuer
