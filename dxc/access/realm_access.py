"""What one principal sees and may do, realm by realm, read from the access index.

Effective permissions in a realm (A3.1): everything in one's private realm
and in realms one owns; elsewhere the union of one's *active* member rows'
``permissions`` and of the roles they name, a role being looked up in the
realm first and then among the global roles of ``rlm-public``. Nobody gets
anything from ``rlm-public`` itself (only GLOBAL_WRITE tokens write there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dxc import tson
from dxc.access import members, permissions
from dxc.access.index import REALMS_TABLE, ROLES_TABLE
from dxc.access.permissions import FULL, NONE, Permissions
from dxc.access.principal import Principal
from dxc.protocol.keys import encode_wire_key
from dxc.storage.access_index import AccessIndex, MemberEntry, RealmEntry, StandingCache
from dxc.storage.objects import ObjectStore

PUBLIC_REALM = "rlm-public"


@dataclass(frozen=True)
class RealmSet:
    """The ``realms`` and ``inviteRealms`` of a sync answer, sorted."""

    realms: tuple[str, ...]
    #: Realms with a pending or rejected invitation for the principal.
    invites: tuple[str, ...] = ()


class RealmAccess:
    """Realm sets and permissions of one principal, through one connection.

    Answers are cached; :meth:`forget` drops them after writes to
    ``realms``/``members``/``roles`` (or a rolled-back savepoint). Who the
    principal stands for is also looked up in ``standing``, the shard's cache,
    when the store knows the database's access stamp.
    """

    def __init__(
        self, store: ObjectStore, principal: Principal, standing: StandingCache | None = None
    ) -> None:
        self.store = store
        self.principal = principal
        self.index = AccessIndex(store.connection, store.db_id)
        self.standing = standing
        self._memberships: tuple[MemberEntry, ...] | None = None
        self._owned: tuple[str, ...] = ()
        self._permissions: dict[str, Permissions] = {}
        self._realms: dict[str, RealmEntry | None] = {}

    def forget(self) -> None:
        self._memberships = None
        self._permissions.clear()
        self._realms.clear()

    # --- reading ------------------------------------------------------------

    def realm_set(self) -> RealmSet:
        user_id = self.principal.user_id
        if user_id is None:
            return RealmSet((PUBLIC_REALM,))
        rows = self.memberships()
        active = {m.realm_id for m in rows if m.state == members.ACTIVE}
        realms = {PUBLIC_REALM, user_id, *self._owned, *active}
        invites = {m.realm_id for m in rows if m.state != members.ACTIVE} - realms
        return RealmSet(tuple(sorted(realms)), tuple(sorted(invites)))

    def readable_realms(self) -> list[str]:
        """The realms the principal sees, as the ``realms`` of a sync answer."""
        return list(self.realm_set().realms)

    def invitation_rows(self, invites: tuple[str, ...]) -> frozenset[tuple[str, str]]:
        """(table, key) of what an invitee sees of ``invites``: each realm's row,
        its roles and the invitee's own member rows, never the other members."""
        if not invites:
            return frozenset()
        wanted = set(invites)
        rows = {(REALMS_TABLE, realm) for realm in invites}
        rows.update(
            (members.MEMBERS_TABLE, m.member_id)
            for m in self.memberships()
            if m.realm_id in wanted
        )
        roles = self.store.live_objects(ROLES_TABLE, invites)
        rows.update((ROLES_TABLE, role.key) for role in roles)
        return frozenset(rows)

    def left_after(self, realm_id: str, rev: int) -> bool:
        """Did the principal leave ``realm_id`` after revision ``rev``: is one of
        its member rows there rejected, and changed since? (Then its device may
        still hold the realm's other rows.)"""
        ids = [
            m.member_id
            for m in self.memberships()
            if m.realm_id == realm_id and m.state == members.REJECTED
        ]
        rows = self.store.get_many(members.MEMBERS_TABLE, ids).values()
        return any(row.rev > rev for row in rows)

    def memberships(self) -> tuple[MemberEntry, ...]:
        """The principal's member rows in existing realms, whatever their state
        (read with the realms it owns, in the same statement)."""
        if self._memberships is None:
            user_id = self.principal.user_id
            self._memberships, self._owned = (
                ((), ()) if user_id is None else self._standing(user_id)
            )
        return self._memberships

    def _standing(self, user_id: str) -> tuple[tuple[MemberEntry, ...], tuple[str, ...]]:
        db_id, email = self.store.db_id, self.principal.email_key
        stamp = self.store.notes.access_stamp
        if self.standing is None or stamp is None:
            return self.index.standing(user_id, email)
        known = self.standing.get(db_id, stamp, user_id, email)
        if known is None:
            known = self.index.standing(user_id, email)
            self.standing.put(db_id, stamp, user_id, email, known)
        return known

    def realm(self, realm_id: str) -> RealmEntry | None:
        """The realm, if its ``realms`` row exists."""
        if realm_id not in self._realms:
            self._realms[realm_id] = self.index.realm(realm_id)
        return self._realms[realm_id]

    # --- permissions ------------------------------------------------------

    def permissions(self, realm_id: str) -> Permissions:
        """The principal's effective permission set in ``realm_id``."""
        if realm_id not in self._permissions:
            self._permissions[realm_id] = self._compute(realm_id)
        return self._permissions[realm_id]

    def _compute(self, realm_id: str) -> Permissions:
        user_id = self.principal.user_id
        if user_id is None or realm_id == PUBLIC_REALM:
            return NONE
        if realm_id == user_id:
            return FULL
        realm = self.realm(realm_id)
        if realm is None:
            return NONE
        if realm.owner == user_id:
            return FULL
        rows = [
            m for m in self.memberships() if m.realm_id == realm_id and m.state == members.ACTIVE
        ]
        sets = [permissions.loads(m.permissions) for m in rows]
        names = sorted({name for m in rows for name in json.loads(m.roles or "[]")})
        if names:
            sets.extend(self.role_permissions(realm_id, names))
        return permissions.union(sets)

    def role_permissions(self, realm_id: str, names: list[str]) -> list[Permissions]:
        """The permissions of roles ``names``: the realm's own role, else the global one."""
        keys = {
            (realm, name): encode_wire_key([realm, name])
            for realm in (realm_id, PUBLIC_REALM)
            for name in names
        }
        found = self.store.get_many(ROLES_TABLE, keys.values())
        sets = []
        for name in names:
            for realm in (realm_id, PUBLIC_REALM):
                row = found.get(keys[realm, name])
                if row is not None and not row.deleted and row.realm_id == realm:
                    value = tson.loads(row.value or "{}")
                    if isinstance(value, dict):
                        sets.append(Permissions.parse(value.get("permissions")))
                    break
        return sets
