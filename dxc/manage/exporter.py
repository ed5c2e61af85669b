"""Exporting a database in the two formats ``dexie-cloud export`` reads.

* NDJSON (``GET /<db>/export/stream``, the ``data.ndjson`` of an export zip):
  a header, schema, roles and demoUsers line, then one
  ``{"realm", "table", "id", "data"}`` line per live object.
* The legacy JSON document (``GET /<db>/export``, ``flask dxc export``):
  ``{"schema", "sealed", "demoUsers", "roles", "data": {realm: {table: {id: object}}}}``.

Both are produced as a stream of texts from one read transaction, in batches
of rows, so a big database is never held in memory. Object values are the
stored TSON text, written verbatim; both formats import back unchanged
(:mod:`dxc.manage.importer`). Roles of the public realm go to the roles
section, not to the object lines.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from dxc import tson
from dxc.access import PUBLIC_REALM
from dxc.access.index import REALMS_TABLE, ROLES_TABLE
from dxc.access.members import MEMBERS_TABLE
from dxc.cooperative import take_turns
from dxc.protocol.revisions import encode_revision
from dxc.services import Services
from dxc.storage import tables as table_store
from dxc.storage import users
from dxc.storage.blobs import BlobIndex
from dxc.storage.clock import utcnow
from dxc.storage.objects import (
    BATCH,
    AppliedTransaction,
    ConsistentOperation,
    ObjectStore,
    StoredObject,
)
from dxc.storage.ydocs import YDocStore

#: NDJSON format version written in the header line.
FORMAT_VERSION = 2
#: Tables exported with any ``table`` filter: who may see the objects.
ACL_TABLES = (REALMS_TABLE, MEMBERS_TABLE)


@dataclass(frozen=True)
class Metadata:
    schema: dict[str, str]
    demo_users: list[str]


def export_ndjson(
    services: Services, db_id: str, realm_id: str | None = None, table: str | None = None
) -> Iterator[str]:
    """The NDJSON export, in chunks of whole lines."""
    meta = _metadata(services, db_id)
    yield _line({
        "type": "header", "version": FORMAT_VERSION, "dbId": db_id,
        "exportedAt": utcnow().isoformat().replace("+00:00", "Z"),
    })
    yield _line({"type": "schema", "tables": meta.schema, "schema": meta.schema, "sealed": False})
    try:
        with services.router.shard_for(db_id).transaction(read_only=True) as connection:
            store = ObjectStore(connection, db_id)
            yield '{"type":"roles","roles":%s}\n' % _roles_text(store)
            yield _line({"type": "demoUsers", "users": {e: {} for e in meta.demo_users}})
            yield from _batched(
                '{"realm":%s,"table":%s,"id":%s,"data":%s}\n'
                % (_json(row.realm_id), _json(row.tbl), _json(row.key), row.value)
                for row in _objects(store, realm_id, table)
            )
    except Exception as error:  # the status is sent already: tell the reader in-band
        yield _line({"type": "error", "message": f"the export failed: {error}"})
        raise


def export_changes(services: Services, db_id: str, since: int) -> Iterator[str]:
    """The NDJSON of everything written after revision ``since``, for replication.

    Unlike :func:`export_ndjson` it carries each row's revision, deletions
    (``"data": null``), departures (an object left a realm), the client
    transactions recorded as applied (so that a resent txid stays skipped
    after a replica takes over) and the where-clause operations (so that an
    offline write based on an older revision is rebased over them there too),
    and its header
    names the revision it reaches, the live objects per table, the blobs and
    the Y.js documents: a reader that applies the lines in order holds exactly
    this database's objects as of that revision (blobs and Y.js updates come from
    ``export/blobs`` and ``export/yjs?since=``).
    """
    meta = _metadata(services, db_id)
    shard = services.router.shard_for(db_id)
    with shard.transaction(read_only=True) as connection:
        store = ObjectStore(connection, db_id)
        head, frozen = store.head()  # read first: rows up to it are all committed
        revision = encode_revision({shard.id: head})
        yield _line({
            "type": "header", "version": FORMAT_VERSION, "dbId": db_id,
            "exportedAt": utcnow().isoformat().replace("+00:00", "Z"),
            "since": since, "revision": revision, "counts": store.live_counts(),
            "blobs": BlobIndex(connection, db_id).count(),
            "yDocuments": YDocStore(connection, db_id).document_count(),
            "frozen": frozen,  # no write will follow head: a replica may take over
        })
        yield _line({"type": "schema", "tables": meta.schema, "sealed": False})
        yield _line({"type": "demoUsers", "users": {e: {} for e in meta.demo_users}})
        try:
            rows = heapq.merge(
                store.changed_rows(since, head), store.departure_rows(since, head),
                store.applied_rows(since, head), store.consistent_rows(since, head),
                key=_rev_of,
            )
            yield from _batched(_change_line(row) for row in rows)
        except Exception as error:  # the status is sent already: tell the reader in-band
            yield _line({"type": "error", "message": f"the export failed: {error}"})
            raise
        # Without this line a reader cannot tell a complete answer from a cut one.
        yield _line({"type": "end", "revision": revision})


def _batched(lines: Iterator[str]) -> Iterator[str]:
    """``lines`` joined :data:`BATCH` at a time, letting other greenlets run between."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= BATCH:
            yield "".join(batch)
            batch = []
            take_turns()
    yield "".join(batch)


Change = StoredObject | AppliedTransaction | ConsistentOperation | tuple[str, str, str, int]


def _rev_of(row: Change) -> int:
    return row[3] if isinstance(row, tuple) else row.rev


def _change_line(row: Change) -> str:
    """A row as a replica reads it: with its revision, ``null`` data for a deletion."""
    if isinstance(row, AppliedTransaction):
        return _line({
            "type": "applied", "user": row.user_id, "client": row.client_identity,
            "txid": row.txid, "rev": row.rev,
        })
    if isinstance(row, ConsistentOperation):
        return _line({
            "type": "consistent", "table": row.tbl, "user": row.user_id,
            "client": row.client_identity, "rev": row.rev, "operation": row.operation,
        })
    if isinstance(row, tuple):
        table, key, realm_id, rev = row
        return _line(
            {"type": "departure", "realm": realm_id, "table": table, "id": key, "rev": rev}
        )
    return '{"realm":%s,"table":%s,"id":%s,"rev":%d,"owner":%s,"data":%s}\n' % (
        _string(row.realm_id), _string(row.tbl), _string(row.key), row.rev,
        "null" if row.owner is None else _string(row.owner),
        "null" if row.deleted else row.value,
    )


def export_legacy(
    services: Services, db_id: str, realm_id: str | None = None, table: str | None = None
) -> Iterator[str]:
    """The legacy JSON export document, in chunks of text."""
    meta = _metadata(services, db_id)
    yield '{"schema":%s,"sealed":false,"demoUsers":%s' % (
        _json(tson.encode(meta.schema)),
        _json(tson.encode({email: {} for email in meta.demo_users})),
    )
    with services.router.shard_for(db_id).transaction(read_only=True) as connection:
        store = ObjectStore(connection, db_id)
        yield ',"roles":%s,"data":{' % _roles_text(store)
        realm: str | None = None
        tbl: str | None = None
        parts: list[str] = []
        for count, row in enumerate(_objects(store, realm_id, table), 1):
            if row.realm_id != realm:
                parts.append(("}}," if realm is not None else "") + _key(row.realm_id) + ":{")
                realm, tbl = row.realm_id, None
            if row.tbl != tbl:
                parts.append(("}," if tbl is not None else "") + _key(row.tbl) + ":{")
                tbl = row.tbl
            else:
                parts.append(",")
            parts.append(f"{_key(row.key)}:{row.value}")
            if count % BATCH == 0:
                yield "".join(parts)
                parts = []
                take_turns()
        parts.append("}}}}" if realm is not None else "}}")
        yield "".join(parts)


def _metadata(services: Services, db_id: str) -> Metadata:
    with services.control.connect() as connection:
        tables = table_store.get_tables(connection, db_id)
        demo = _demo_users(connection, db_id)
    return Metadata({name: declaration(info) for name, info in sorted(tables.items())}, demo)


def declaration(info: table_store.TableInfo) -> str:
    """The Dexie schema string of a table's primary key (``"@ref"``, ``"[a+b]"``);
    ``id`` when its key path is unknown."""
    key_path = info.key_path if info.key_path is not None else "id"
    return ("@" if info.generated_global_id and not info.compound else "") + key_path


def _demo_users(connection: Any, db_id: str) -> list[str]:
    emails: list[str] = []
    after: tuple[Any, str] | None = None
    while True:
        page = users.list_users(connection, db_id, user_type="demo", after=after, limit=BATCH)
        emails.extend(user.email or user.user_id for user in page)
        if len(page) < BATCH:
            return emails
        after = (None, page[-1].user_id)


def _objects(store: ObjectStore, realm_id: str | None, table: str | None) -> Iterator[StoredObject]:
    tables = None if table is None else sorted({table, *ACL_TABLES})
    for row in store.export_rows(realm_id, tables):
        if not (row.tbl == ROLES_TABLE and row.realm_id == PUBLIC_REALM):
            yield row


def _roles_text(store: ObjectStore) -> str:
    """The public realm's roles as a TSON ``{name: role}`` map."""
    roles: dict[str, Any] = {}
    for row in store.export_rows(PUBLIC_REALM, [ROLES_TABLE]):
        value = tson.loads(row.value or "{}")
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            name = value.pop("name")
            value.pop("realmId", None)
            roles[name] = value
    return tson.dumps(roles)


def _line(value: dict[str, Any]) -> str:
    return _json(value) + "\n"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


#: A string as JSON (what ``_json`` gives for one, without its per-call set-up).
_string = encode_basestring


def _key(name: str) -> str:
    """A map key inside the TSON document: a leading ``$`` is doubled."""
    return _json("$" + name if name.startswith("$") else name)
