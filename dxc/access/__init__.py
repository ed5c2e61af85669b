"""Who may read and write which realms.

This stage knows a user's private realm (their user id), the realms they
created (``realms`` rows they own) and the public realm, which everyone may
read and only a GLOBAL_WRITE token may write. Members, roles and invites
extend these rules later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dxc.storage.objects import ObjectStore

PUBLIC_REALM = "rlm-public"
REALMS_TABLE = "realms"


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a user, or nobody (``user_id`` None)."""

    user_id: str | None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None


ANONYMOUS = Principal(None)


class RealmAccess:
    """Realm-level permissions of one principal, read through one connection."""

    def __init__(self, store: ObjectStore, principal: Principal) -> None:
        self.store = store
        self.principal = principal
        self._owned: dict[str, bool] = {}

    def forget(self) -> None:
        """Drop what was learnt about realm ownership (after writes to ``realms``)."""
        self._owned.clear()

    def readable_realms(self) -> list[str]:
        """The realms the principal sees, as the ``realms`` of a sync answer."""
        user_id = self.principal.user_id
        if user_id is None:
            return [PUBLIC_REALM]
        owned = self.store.realms_owned_by(user_id)
        return sorted({PUBLIC_REALM, user_id, *owned})

    def can_write(self, realm_id: str) -> bool:
        """May the principal create, change or delete objects in ``realm_id``?"""
        user_id = self.principal.user_id
        if user_id is None:
            return False
        if realm_id == PUBLIC_REALM:
            return "GLOBAL_WRITE" in self.principal.scopes
        if realm_id == user_id:
            return True
        if realm_id not in self._owned:
            row = self.store.get_many(REALMS_TABLE, [realm_id]).get(realm_id)
            self._owned[realm_id] = row is not None and not row.deleted and row.owner == user_id
        return self._owned[realm_id]
