"""Importing a file in the ``dexie-cloud import`` format (``ImportFileFormat``).

``{"schema", "demoUsers", "roles", "data"}``: import is additive; ``null``
deletes a demo user, a role or an object. Imported objects get a new revision
like any write, so clients receive them on their next pull.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dxc import tson
from dxc.access import PUBLIC_REALM
from dxc.access.index import store_objects
from dxc.protocol import ProtocolError
from dxc.protocol.keys import encode_wire_key
from dxc.protocol.schema import primary_key_path, table_prefix
from dxc.realtime.bus import Change
from dxc.services import Services
from dxc.storage import tables as table_store
from dxc.storage import users
from dxc.storage.objects import ObjectStore, StoredObject

SECTIONS = {"schema", "sealed", "demoUsers", "roles", "data"}
#: Primary keys of the built-in tables, for imports that bring no schema.
BUILT_IN_KEYS = {"realms": "realmId", "members": "id"}


@dataclass
class ImportSummary:
    demo_users: int = 0
    roles: int = 0
    objects: int = 0
    deleted: int = 0
    tables: list[str] = field(default_factory=list)


def import_document(services: Services, db_id: str, document: Any) -> ImportSummary:
    """Apply ``document`` (decoded TSON) to database ``db_id``."""
    if not isinstance(document, dict):
        raise ProtocolError("an import must be a JSON object")
    unknown = set(document) - SECTIONS - {"$exportMeta"}
    if unknown:
        raise ProtocolError(f"unknown import sections: {', '.join(sorted(unknown))}")
    schema = _section(document, "schema")
    demo_users = _section(document, "demoUsers")
    roles = _section(document, "roles")
    data = _section(document, "data")
    summary = ImportSummary()
    shard = services.router.shard_for(db_id)
    with services.control.begin() as connection:
        for name, declaration in schema.items():
            if isinstance(declaration, str):
                table_store.register_table(
                    connection, db_id, name, declaration.startswith("@"), table_prefix(name)
                )
                summary.tables.append(name)
        for email, entry in demo_users.items():
            if entry is None:
                users.remove_demo_user(connection, db_id, email)
            else:
                users.add_demo_user(connection, db_id, email)
            summary.demo_users += 1
    role_rows, data_rows = _role_rows(roles), _data_rows(data, schema)
    rows = role_rows + data_rows
    if rows:
        with shard.transaction() as connection:
            store = ObjectStore(connection, db_id)
            rev = store.next_revision()
            for row in rows:
                row.rev = rev
            store_objects(store, rows)
        services.bus.publish(
            Change.committed(db_id, shard.id, rev, store.written_realms, store.written_tables)
        )
    summary.roles = len(role_rows)
    summary.deleted = sum(1 for row in data_rows if row.deleted)
    summary.objects = len(data_rows) - summary.deleted
    return summary


def _section(document: dict[str, Any], name: str) -> dict[str, Any]:
    section = document.get(name) or {}
    if not isinstance(section, dict):
        raise ProtocolError(f"{name} must be an object")
    return section


def _role_rows(roles: dict[str, Any]) -> list[StoredObject]:
    rows = []
    for name, role in roles.items():
        key = encode_wire_key([PUBLIC_REALM, name])
        if role is None:
            rows.append(StoredObject("roles", key, PUBLIC_REALM, None, 0, True, None))
            continue
        if not isinstance(role, dict):
            raise ProtocolError(f"roles.{name} must be an object or null")
        value = {**role, "realmId": PUBLIC_REALM, "name": name}
        rows.append(StoredObject("roles", key, PUBLIC_REALM, None, 0, False, tson.dumps(value)))
    return rows


def _data_rows(data: dict[str, Any], schema: dict[str, Any]) -> list[StoredObject]:
    rows = []
    for realm_id, realm_tables in data.items():
        if not isinstance(realm_tables, dict):
            raise ProtocolError(f"data.{realm_id} must be an object of tables")
        for table, objects in realm_tables.items():
            if not isinstance(objects, dict) or table.startswith("$"):
                raise ProtocolError(f"data.{realm_id}.{table} must be an object of objects")
            key_path = _key_path(table, schema)
            for key, value in objects.items():
                if value is None:
                    rows.append(StoredObject(table, key, realm_id, None, 0, True, None))
                    continue
                if not isinstance(value, dict):
                    raise ProtocolError(f"data.{realm_id}.{table}.{key} must be an object")
                value = {**value, "realmId": realm_id}
                if key_path and not key_path.startswith("["):
                    value.setdefault(key_path, key)
                owner = value.get("owner")
                rows.append(
                    StoredObject(
                        table,
                        key,
                        realm_id,
                        owner if isinstance(owner, str) else None,
                        0,
                        False,
                        tson.dumps(value),
                    )
                )
    return rows


def _key_path(table: str, schema: dict[str, Any]) -> str | None:
    declaration = schema.get(table)
    if isinstance(declaration, str):
        return primary_key_path(declaration)
    return BUILT_IN_KEYS.get(table, "id" if table != "roles" else None)
