"""Writing objects while keeping the access index in step with them.

Every writer of synced objects (``/sync``, imports) goes through
:func:`store_objects`, so a ``realms`` or ``members`` row and its index
entry are always written in the same transaction (and savepoint).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from dxc import tson
from dxc.access import members, permissions
from dxc.access.principal import normalise_email
from dxc.storage.access_index import AccessIndex, MemberEntry, RealmEntry
from dxc.storage.blobs import BlobIndex
from dxc.storage.objects import ObjectStore, StoredObject

REALMS_TABLE = "realms"
ROLES_TABLE = "roles"
#: Tables whose rows decide who may see and do what.
ACCESS_TABLES = frozenset({REALMS_TABLE, members.MEMBERS_TABLE, ROLES_TABLE})


def store_objects(
    store: ObjectStore, rows: Sequence[StoredObject], new_only: bool = False
) -> list[tuple[str, str]]:
    """Insert or replace ``rows`` and the index entries derived from them (the access
    index, and which objects refer to which blobs). With ``new_only``, the keys that
    hold a live object (:meth:`ObjectStore.put_many`), whose write the caller refuses."""
    taken = store.put_many(rows, new_only)
    if taken:
        return taken  # refused: the index entries would be rolled back with the rows
    BlobIndex(store.connection, store.db_id).note_references(rows)
    index: AccessIndex | None = None
    for row in _last_per_key(rows):
        if row.tbl not in (REALMS_TABLE, members.MEMBERS_TABLE):
            continue
        if index is None:
            index = AccessIndex(store.connection, store.db_id)
            store.stamp_access()
        if row.tbl == REALMS_TABLE:
            if row.deleted:
                index.drop_realm(row.key)
            else:
                index.put_realm(RealmEntry(row.key, row.owner))
        elif row.deleted:
            index.drop_member(row.key)
        else:
            index.put_member(member_entry(row.key, row.realm_id, tson.loads(row.value or "{}")))
    return []


def member_entry(key: str, realm_id: str, value: Any) -> MemberEntry:
    """The index entry of members row ``key`` (a malformed row stands for nobody)."""
    value = value if isinstance(value, dict) else {}
    user_id = value.get("userId")
    roles = value.get("roles")
    return MemberEntry(
        member_id=key,
        realm_id=realm_id,
        user_id=user_id if isinstance(user_id, str) and user_id else None,
        email=normalise_email(value.get("email")),
        state=members.state_of(value),
        permissions=permissions.dumps(permissions.Permissions.parse(value.get("permissions"))),
        roles=json.dumps(
            sorted({r for r in roles if isinstance(r, str)}) if isinstance(roles, list) else []
        ),
    )


def _last_per_key(rows: Iterable[StoredObject]) -> Iterable[StoredObject]:
    return {(row.tbl, row.key): row for row in rows}.values()
