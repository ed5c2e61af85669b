"""May the principal make this write? The per-object rules of A5.1.

Judged on the working copy (the transaction's savepoint), so an operation
sees what the earlier ones of its transaction did. The owner of an object
(its ``owner``, or anyone for objects in their private realm) may change
and delete it; otherwise the realm's effective permissions decide, the
properties that change being the top-level ones whose value differs.
Tokens with GLOBAL_WRITE pass every rule here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dxc import tson
from dxc.access import members, permissions
from dxc.access.index import REALMS_TABLE, ROLES_TABLE
from dxc.access.realm_access import PUBLIC_REALM, RealmAccess
from dxc.access.rejections import InvalidOperation, PermissionDenied
from dxc.storage.objects import StoredObject


class WriteRules:
    def __init__(self, access: RealmAccess) -> None:
        self.access = access
        self.principal = access.principal
        self.user_id = access.principal.user_id

    def check_create(self, table: str, key: str, value: dict[str, Any]) -> None:
        realm_id, owner = value["realmId"], value.get("owner")
        if table in (members.MEMBERS_TABLE, ROLES_TABLE):
            self._require_realm(table, realm_id)
        if self.principal.global_write:
            return
        if table == REALMS_TABLE:
            # Anyone may create a realm; it is theirs.
            if owner != self.user_id:
                raise PermissionDenied("realms: a new realm must be owned by its creator")
            return
        allowed = self.access.permissions(realm_id)
        if not allowed.can_add(table):
            raise PermissionDenied(f"{table}: no permission to add to realm {realm_id!r}")
        if owner not in (None, self.user_id) and not allowed.can_manage(table):
            raise PermissionDenied(f"{table}: cannot create {key!r} owned by {owner!r}")
        if table == members.MEMBERS_TABLE:
            if value.get("userId") not in (None, self.user_id):
                raise PermissionDenied("members: userId can only be set to your own user id")
            self._check_grant(key, value)

    def check_change(
        self,
        table: str,
        old: StoredObject,
        old_value: Callable[[], dict[str, Any]],
        value: dict[str, Any],
        server_set: frozenset[str] = frozenset(),
    ) -> None:
        """``old`` becomes ``value``; ``server_set`` properties are the server's doing."""
        realm_id = value["realmId"]
        moved = realm_id != old.realm_id
        if moved and table in (members.MEMBERS_TABLE, ROLES_TABLE):
            self._require_realm(table, realm_id)
        if self.principal.global_write:
            return
        owns = self._owns(old)
        if owns and table not in (REALMS_TABLE, members.MEMBERS_TABLE) and not moved:
            return  # the common case, decided without decoding anything
        props = changed_props(old_value(), value) - server_set
        allowed = self.access.permissions(old.realm_id)
        if table == REALMS_TABLE and "owner" in props and not (
            old.owner == self.user_id or allowed.can_manage(REALMS_TABLE)
        ):
            raise PermissionDenied(f"realms: only the owner or a manager may give {old.key!r} away")
        if not (owns or allowed.can_update(table, props)):
            raise PermissionDenied(
                f"{table}: no permission to change {', '.join(sorted(props))} of {old.key!r}"
            )
        if moved and not self.access.permissions(realm_id).can_add(table):
            raise PermissionDenied(f"{table}: no permission to move {old.key!r} to {realm_id!r}")
        if table == members.MEMBERS_TABLE:
            if "userId" in props and value.get("userId") not in (None, self.user_id):
                raise PermissionDenied("members: userId can only be set to your own user id")
            if props & {"permissions", "roles", "realmId"}:
                self._check_grant(old.key, value)

    def check_delete(self, table: str, old: StoredObject, old_value: dict[str, Any]) -> None:
        if self.principal.global_write or self._owns(old):
            return
        if table == members.MEMBERS_TABLE and members.stands_for(old_value, self.principal):
            return  # leaving a realm, or declining an invitation for good
        if not self.access.permissions(old.realm_id).can_delete(table):
            raise PermissionDenied(f"{table}: no permission to delete {old.key!r}")

    def check_document_update(self, table: str, prop: str, parent: StoredObject) -> None:
        """May the principal change Y document ``prop`` of ``parent``: as if it
        updated that property of the object."""
        if self.principal.global_write or (self.user_id is not None and self._owns(parent)):
            return
        if not self.access.permissions(parent.realm_id).can_update(table, (prop,)):
            raise PermissionDenied(f"{table}: no permission to change {prop} of {parent.key!r}")

    def _check_grant(self, key: str, value: dict[str, Any]) -> None:
        """A member row grants at most what its writer holds in the realm
        (``add: ['members']`` must not become ``manage: '*'`` for oneself or a friend)."""
        realm_id = value["realmId"]
        held = self.access.permissions(realm_id)
        granted = [permissions.Permissions.parse(value.get("permissions"))]
        roles = value.get("roles")
        if isinstance(roles, list):
            names = sorted({name for name in roles if isinstance(name, str)})
            granted.extend(self.access.role_permissions(realm_id, names))
        if not held.covers(permissions.union(granted)):
            raise PermissionDenied(
                f"members: {key!r} would grant more than you hold in realm {realm_id!r}"
            )

    def _owns(self, old: StoredObject) -> bool:
        """Owner rights: the object's owner, or anything in one's private realm."""
        return old.realm_id == self.user_id or (
            old.owner is not None and old.owner == self.user_id
        )

    def _require_realm(self, table: str, realm_id: str) -> None:
        """Members and roles belong to an existing realm (global roles: GLOBAL_WRITE only)."""
        if realm_id == PUBLIC_REALM and self.principal.global_write:
            return
        if self.access.realm(realm_id) is None:
            raise InvalidOperation(f"{table}: there is no realm {realm_id!r}")


def changed_props(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    """Top-level properties whose value differs (compared as the wire text)."""
    return {
        name
        for name in old.keys() | new.keys()
        if name not in old or name not in new or tson.dumps(old[name]) != tson.dumps(new[name])
    }
