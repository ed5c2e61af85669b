"""Importing data in the two ``dexie-cloud import`` formats.

* The legacy JSON document (``ImportFileFormat``): ``{"schema", "sealed",
  "demoUsers", "roles", "data"}`` as one TSON document (``flask dxc import``,
  ``POST /<db>/import``).
* NDJSON (``data.ndjson`` of an export zip, ``POST /<db>/import/stream``):
  header, schema, roles and demoUsers lines, then one line per object,
  ``{"realm", "table", "id", "data"}`` (v2) or ``{"$type": "object"|"member", …}`` (v1).

Import is additive; ``null`` deletes a demo user, a role or an object.
Everything is validated before it counts: the objects are written in one
shard transaction (a bad line rolls all of them back), and the schema and
demo users only after that transaction committed. Imported objects get a new
revision like any write, so clients receive them on their next pull.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from dxc import tson
from dxc.access import PUBLIC_REALM
from dxc.access.index import store_objects
from dxc.bus.commits import committing
from dxc.cooperative import take_turns
from dxc.protocol import ProtocolError
from dxc.protocol.identifiers import (
    KEY_BYTES,
    TABLE_BYTES,
    USER_ID_BYTES,
    check_identifier,
    check_indexed_props,
)
from dxc.protocol.keys import decode_wire_key, encode_wire_key
from dxc.protocol.schema import primary_key_path, table_prefix
from dxc.services import Services
from dxc.storage import tables as table_store
from dxc.storage import users
from dxc.storage.objects import BATCH, StoredObject, refresh_statistics

SECTIONS = {"schema", "sealed", "demoUsers", "roles", "data"}
#: The longest NDJSON line accepted (one object).
MAX_LINE_BYTES = 16 * 1024 * 1024


@dataclass
class ImportSummary:
    demo_users: int = 0
    roles: int = 0
    objects: int = 0
    deleted: int = 0
    tables: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``{ok: true, …counts}`` answer the CLI checks."""
        counts = asdict(self)
        return {"ok": True, **{_camel(name): value for name, value in counts.items()}}


class Import:
    """One import being assembled: control changes kept aside, rows validated as they come."""

    def __init__(self, known: dict[str, table_store.TableInfo]) -> None:
        self.known = known  # the tables the database has already
        self.schema: dict[str, str] = {}
        self.demo_users: dict[str, bool] = {}  # e-mail -> keep (False: remove)
        self.summary = ImportSummary()

    def add_schema(self, schema: Any) -> None:
        for name, declaration in _mapping(schema, "schema").items():
            if declaration is not None and not isinstance(declaration, str):
                raise ProtocolError(f"schema.{name} must be a Dexie schema string or null")
            if isinstance(declaration, str):  # null (a deleted table) keeps its data: ignored
                _check_table(name, "schema")
                if problem := tson.text_problem(declaration):
                    raise ProtocolError(f"schema.{name} {problem}")
                self.schema[name] = declaration

    def add_demo_users(self, demo_users: Any) -> None:
        for email, entry in _mapping(demo_users, "demoUsers").items():
            check_identifier(email, "demoUsers: an e-mail address", USER_ID_BYTES)
            if not email.strip() or "@" not in email:
                raise ProtocolError(f"demoUsers: {email!r} is not an e-mail address")
            if entry is not None and not isinstance(entry, dict):
                raise ProtocolError(f"demoUsers.{email} must be an object or null")
            self.demo_users[email] = entry is not None

    def role_rows(self, roles: Any) -> list[StoredObject]:
        rows = []
        for name, role in _mapping(roles, "roles").items():
            key = check_identifier(
                encode_wire_key([PUBLIC_REALM, name]), "roles: a role's key", KEY_BYTES
            )
            if role is None:
                rows.append(StoredObject("roles", key, PUBLIC_REALM, None, 0, True, None))
                continue
            if not isinstance(role, dict):
                raise ProtocolError(f"roles.{name} must be an object or null")
            value = {**role, "realmId": PUBLIC_REALM, "name": name}
            rows.append(StoredObject("roles", key, PUBLIC_REALM, None, 0, False, tson.dumps(value)))
        self.summary.roles += len(rows)
        return rows

    def data_rows(self, data: Any) -> list[StoredObject]:
        rows = []
        for realm_id, realm_tables in _mapping(data, "data").items():
            for table, objects in _mapping(realm_tables, f"data.{realm_id}").items():
                _check_table(table, f"data.{realm_id}")
                for key, value in _mapping(objects, f"data.{realm_id}.{table}").items():
                    rows.append(self.object_row(realm_id, table, key, value))
        return rows

    def object_row(self, realm_id: Any, table: Any, key: Any, value: Any) -> StoredObject:
        """The row for object ``key`` of ``table`` in ``realm_id`` (``value`` None: delete it)."""
        check_identifier(realm_id, "an object's realm", KEY_BYTES)
        _check_table(table, "an object's table")
        check_identifier(key, f"{table}: an object's id", KEY_BYTES)
        if value is None:
            self.summary.deleted += 1
            return StoredObject(table, key, realm_id, None, 0, True, None)
        if not isinstance(value, dict):
            raise ProtocolError(f"data.{realm_id}.{table}.{key} must be an object or null")
        value = {**value, "realmId": realm_id}
        key = check_identifier(
            _with_key(self._table(table), key, value), f"{table}: an object's id", KEY_BYTES
        )
        check_indexed_props(table, value)
        owner = value.get("owner")
        self.summary.objects += 1
        return StoredObject(
            table, key, realm_id, owner if isinstance(owner, str) else None, 0, False,
            tson.dumps(value),
        )

    def _table(self, table: str) -> table_store.TableInfo:
        """What the import's schema, else the database, says of ``table`` (key ``id``
        when neither knows it)."""
        if table in self.schema:
            declaration = self.schema[table]
            return table_store.TableInfo(
                table, None, declaration.startswith("@"), primary_key_path(declaration)
            )
        known = self.known.get(table)
        if known is not None and known.key_path is not None:
            return known
        key_path = table_store.BUILT_IN_KEY_PATHS.get(table, "id")
        return table_store.TableInfo(table, None, False, key_path)


def _with_key(info: table_store.TableInfo, key: str, value: dict[str, Any]) -> str:
    """The stored key for map key ``key``, setting the key properties of ``value``
    it lacks. A compound key is its JSON array text (stored as clients encode it)."""
    props = info.key_props or []
    if not info.compound:
        if props:
            value.setdefault(props[0], key)
        return key
    parts = decode_wire_key(key)
    if not isinstance(parts, list) or len(parts) != len(props):
        raise ProtocolError(
            f"{info.name}: the key {key!r} is not a JSON array of {len(props)} values"
            f" ({info.key_path})"
        )
    try:
        wire_key = encode_wire_key(parts)
    except ValueError as error:
        raise ProtocolError(f"{info.name}: not a valid compound key: {error}") from None
    for prop, part in zip(props, parts, strict=True):
        value.setdefault(prop, part)
    return wire_key


def import_document(services: Services, db_id: str, document: Any) -> ImportSummary:
    """Apply ``document`` (the decoded TSON of a legacy import file) to ``db_id``."""
    if not isinstance(document, dict):
        raise ProtocolError("an import must be a JSON object")
    unknown = set(document) - SECTIONS - {"$exportMeta"}
    if unknown:
        raise ProtocolError(f"unknown import sections: {', '.join(sorted(unknown))}")
    batch = Import(known_tables(services, db_id))
    batch.add_schema(document.get("schema"))
    batch.add_demo_users(document.get("demoUsers"))
    rows = batch.role_rows(document.get("roles")) + batch.data_rows(document.get("data"))
    return _commit(services, db_id, batch, batches(rows))


def import_ndjson(services: Services, db_id: str, body: IO[bytes]) -> ImportSummary:
    """Apply the NDJSON in ``body`` to ``db_id``; any bad line and nothing is imported."""
    batch = Import(known_tables(services, db_id))
    lines = iter(lambda: body.readline(MAX_LINE_BYTES + 1), b"")
    return _commit(services, db_id, batch, batches(ndjson_rows(batch, lines)))


def known_tables(services: Services, db_id: str) -> dict[str, table_store.TableInfo]:
    services.router.shard_for(db_id)  # an unknown database fails here
    with services.control.connect() as connection:
        return table_store.get_tables(connection, db_id)


def _commit(
    services: Services, db_id: str, batch: Import, row_batches: Iterable[list[StoredObject]]
) -> ImportSummary:
    """Write the rows in one shard transaction, then the schema and demo users, and only
    then tell live clients (they read the table registry when the news reaches them)."""
    shard = services.router.shard_for(db_id)
    register_batch = functools.partial(register, services, db_id, batch)
    with committing(shard, db_id, services.bus, before_news=register_batch) as write:
        for rows in row_batches:
            for row in rows:
                row.rev = write.rev
            store_objects(write.store, rows)
            take_turns()
    refresh_statistics(shard.engine, batch.summary.objects + batch.summary.deleted)
    return batch.summary


def register(services: Services, db_id: str, batch: Import) -> None:
    """Register the import's tables and demo users (control database)."""
    with services.control.begin() as connection:
        for name, declaration in batch.schema.items():
            table_store.register_table(
                connection, db_id, name, declaration.startswith("@"), table_prefix(name),
                primary_key_path(declaration),
            )
            batch.summary.tables.append(name)
        for email, keep in batch.demo_users.items():
            if keep:
                users.add_demo_user(connection, db_id, email)
            else:
                users.remove_demo_user(connection, db_id, email)
            batch.summary.demo_users += 1


def ndjson_rows(batch: Import, lines: Iterable[bytes]) -> Iterator[StoredObject]:
    """The rows of the NDJSON ``lines`` (each at most ``MAX_LINE_BYTES`` + 1 long, so
    that a longer one is seen); the schema and demo users go into ``batch``."""
    for number, raw in enumerate(lines, 1):
        if len(raw) > MAX_LINE_BYTES:
            raise ProtocolError(f"line {number}: longer than {MAX_LINE_BYTES} bytes")
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            raise ProtocolError(f"line {number}: not JSON") from None
        if not isinstance(line, dict):
            raise ProtocolError(f"line {number}: not a JSON object")
        try:
            yield from _line_rows(batch, line)
        except (ProtocolError, tson.TSONError) as error:
            raise ProtocolError(f"line {number}: {error}") from None


def _line_rows(batch: Import, line: dict[str, Any]) -> Iterator[StoredObject]:
    kind = line.get("type")
    legacy_kind = line.get("$type")
    if kind == "header":
        return
    if kind == "schema":
        batch.add_schema(line.get("tables", line.get("schema")))
    elif kind == "roles":
        yield from batch.role_rows(tson.decode(line.get("roles")))
    elif kind == "demoUsers":
        batch.add_demo_users(line.get("users"))
    elif kind == "error":
        raise ProtocolError(f"the export it came from failed: {line.get('message')}")
    elif legacy_kind in ("object", "member") or (kind is None and legacy_kind is None):
        table = "members" if legacy_kind == "member" else line.get("table")
        data = line.get("data", ...)
        if data is ...:
            raise ProtocolError("an object line needs realm, table, id and data")
        yield batch.object_row(line.get("realm"), table, line.get("id"), tson.decode(data))
    else:
        raise ProtocolError(f"unknown line type {kind or legacy_kind!r}")


def batches(rows: Iterable[StoredObject]) -> Iterator[list[StoredObject]]:
    batch: list[StoredObject] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _mapping(section: Any, name: str) -> dict[str, Any]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ProtocolError(f"{name} must be an object")
    return section


def _check_table(name: Any, where: str) -> None:
    if not isinstance(name, str) or name.startswith("$"):
        raise ProtocolError(f"{where}: {name!r} is not a table name")
    check_identifier(name, f"{where}: the table", TABLE_BYTES)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
