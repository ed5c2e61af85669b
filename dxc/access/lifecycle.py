"""Realm rules that must hold when a client transaction ends (A7.1).

* A new realm's id is not in use by any object already (nobody takes over
  data by creating the realm it names).
* The owner of a new realm gets an accepted member row if the transaction
  did not add one: clients show the owner among the members.
* Every realm keeps an active member row for its owner; a transaction that
  removes it, or gives the realm to someone without one, is refused.
* A deleted realm takes its members and roles with it, and must be empty
  of other objects by then.
"""

from __future__ import annotations

from datetime import datetime

from dxc import tson
from dxc.access import members
from dxc.access.index import REALMS_TABLE, ROLES_TABLE, store_objects
from dxc.access.realm_access import RealmAccess
from dxc.access.rejections import PermissionDenied
from dxc.storage.objects import ObjectStore, StoredObject


class RealmLifecycle:
    """Follows one client transaction's writes to realms and members, then checks them."""

    def __init__(
        self, store: ObjectStore, access: RealmAccess, member_prefix: str, rev: int, now: datetime
    ) -> None:
        self.store = store
        self.access = access
        self.member_prefix = member_prefix
        self.rev = rev
        self.now = now
        self.begin()

    def begin(self) -> None:
        """Start following a new transaction."""
        self.written: set[tuple[str, str]] = set()
        self.created: set[str] = set()
        self.deleted: set[str] = set()
        self.changed: set[str] = set()  #: realms whose owner or members changed

    def note(self, old: StoredObject | None, row: StoredObject) -> None:
        """``row`` is being written over ``old`` (None: nothing live)."""
        self.written.add((row.tbl, row.key))
        if row.tbl == REALMS_TABLE:
            if row.deleted:
                self.deleted.add(row.key)
            elif old is None:
                self.created.add(row.key)
            else:
                self.changed.add(row.key)
        elif row.tbl == members.MEMBERS_TABLE:
            self.changed.add(row.realm_id)
            if old is not None:
                self.changed.add(old.realm_id)

    def check_new_realm(self, realm_id: str) -> None:
        """Refuse to create a realm that objects outside this transaction already name."""
        taken = self.store.live_keys_in_realm(realm_id, len(self.written) + 1)
        if any(pair not in self.written for pair in taken):
            raise PermissionDenied(f"realms: {realm_id!r} is already in use")

    def finish(self) -> list[StoredObject]:
        """Add owner members, cascade deletions and check the invariants.

        Returns the rows it wrote; raises :class:`PermissionDenied` if the
        transaction leaves a realm without its owner's member or not empty.
        """
        rows: list[StoredObject] = []
        gone = sorted(r for r in self.deleted if self.access.realm(r) is None)
        for realm_id in gone:
            for table in (members.MEMBERS_TABLE, ROLES_TABLE):
                rows.extend(
                    old.tombstone(self.rev) for old in self.store.live_objects(table, [realm_id])
                )
        rows.extend(filter(None, map(self._owner_member, sorted(self.created))))
        if rows:
            store_objects(self.store, rows)
            self.access.forget()
        for realm_id in gone:
            if self.store.live_keys_in_realm(realm_id, 1):
                raise PermissionDenied(
                    f"realms: {realm_id!r} still has objects; delete or move them first"
                )
        for realm_id in sorted(self.created | self.changed):
            realm = self.access.realm(realm_id)
            owner = realm.owner if realm is not None else None
            if owner is not None and not self._has_member(realm_id, owner):
                raise PermissionDenied(
                    f"realms: the owner of {realm_id!r} must keep an accepted member row"
                )
        return rows

    def _has_member(self, realm_id: str, user_id: str) -> bool:
        return any(
            m.user_id == user_id and m.state == members.ACTIVE
            for m in self.access.index.members_of([realm_id])
        )

    def _owner_member(self, realm_id: str) -> StoredObject | None:
        realm = self.access.realm(realm_id)
        if realm is None or realm.owner is None or self._has_member(realm_id, realm.owner):
            return None
        key, value = members.owner_member(
            realm_id, realm.owner, self.access.principal, self.member_prefix, self.now
        )
        self.written.add((members.MEMBERS_TABLE, key))
        return StoredObject(
            members.MEMBERS_TABLE, key, realm_id, realm.owner, self.rev, False, tson.dumps(value)
        )
