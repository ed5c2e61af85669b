"""Applying a source's change stream here, revision for revision.

Each row keeps the revision it has at the source and the database's counter
rises with them, so a revision token the source gave a client means the same
state here: after the switch the client's next pull gets exactly what it
misses. That holds while this database takes no writes of its own, which is
why the copy runs before the redirect and stops with it.

Rows are written in transactions of about :data:`BATCH_ROWS`, cut only
between two revisions; after each commit the checkpoint (the last revision
applied whole) is stored, so a copy that dies resumes there. Writing a row
again is harmless (same key, same revision, same value).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dxc.access.index import store_objects
from dxc.bus.commits import committing
from dxc.protocol import ProtocolError
from dxc.protocol.identifiers import KEY_BYTES, TABLE_BYTES, check_identifier
from dxc.protocol.revisions import decode_revision
from dxc.protocol.schema import primary_key_path, table_prefix
from dxc.services import Services
from dxc.storage import tables as table_store
from dxc.storage import users
from dxc.storage.objects import StoredObject

#: Rows per transaction (more when one revision holds more).
BATCH_ROWS = 2000


@dataclass
class Departure:
    table: str
    key: str
    realm_id: str
    rev: int


@dataclass
class Round:
    """What one pass over the source's stream found."""

    shard: int = 0
    head: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    complete: bool = False
    #: The source takes no more writes (``flask dxc redirect``): ``head`` is its last.
    frozen: bool = False


#: Called after each commit: (checkpoint, rows in that commit).
Progress = Callable[[Round, int, int], None]


def apply_stream(
    services: Services,
    db_id: str,
    lines: Iterable[dict],
    progress: Progress,
    shard: int | None = None,
) -> Round:
    """Apply the lines of one ``export/stream?since=…`` answer; the round it was.

    ``shard``: the source shard of the revisions applied so far (None: none yet)."""
    found = Round()
    pending: list[StoredObject | Departure] = []
    for line in lines:
        kind = line.get("type")
        if kind == "header":
            found.shard, found.head = _revision(line.get("revision"))
            if shard is not None and found.shard != shard:
                raise ProtocolError(
                    "the source database moved to another shard: its revisions mean"
                    " something else now; start the replication again"
                )
            found.counts = {str(k): int(v) for k, v in (line.get("counts") or {}).items()}
            found.frozen = line.get("frozen") is True
        elif kind == "schema":
            _register_tables(services, db_id, line.get("tables") or {})
        elif kind == "demoUsers":
            _add_demo_users(services, db_id, line.get("users") or {})
        elif kind == "error":
            raise ProtocolError(f"the source's export failed: {line.get('message')}")
        elif kind == "end":
            found.complete = True
        else:
            entry = _entry(line)
            if len(pending) >= BATCH_ROWS and entry.rev != pending[-1].rev:
                _commit(services, db_id, pending, pending[-1].rev)
                progress(found, pending[-1].rev, len(pending))
                pending = []
            pending.append(entry)
    if not found.complete:
        raise ProtocolError("the source's answer ended early")
    _commit(services, db_id, pending, found.head)
    progress(found, found.head, len(pending))
    return found


def _revision(token: object) -> tuple[int, int]:
    revisions = decode_revision(token)
    if not revisions or len(revisions) != 1:
        raise ProtocolError(f"the source's revision {token!r} is not one of one shard")
    ((shard, head),) = revisions.items()
    return shard, head


def _entry(line: dict) -> StoredObject | Departure:
    table, key, realm_id = line.get("table"), line.get("id"), line.get("realm")
    rev = line.get("rev")
    if not all(isinstance(v, str) for v in (table, key, realm_id)) or not isinstance(rev, int):
        raise ProtocolError(f"not a change line: {str(line)[:200]}")
    check_identifier(table, "a replicated table", TABLE_BYTES)
    check_identifier(key, f"{table}: a replicated id", KEY_BYTES)
    check_identifier(realm_id, f"{table}/{key}: a replicated realm", KEY_BYTES)
    if line.get("type") == "departure":
        return Departure(table, key, realm_id, rev)
    owner = line.get("owner")
    owner = owner if isinstance(owner, str) else None
    data = line.get("data")
    if data is None:
        return StoredObject(table, key, realm_id, owner, rev, True, None)
    if not isinstance(data, dict):
        raise ProtocolError(f"{table}/{key}: data must be an object or null")
    value = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return StoredObject(table, key, realm_id, owner, rev, False, value)


def _commit(
    services: Services, db_id: str, entries: list[StoredObject | Departure], upto: int
) -> None:
    """Write ``entries`` and raise the counter to ``upto`` in one transaction."""
    shard = services.router.shard_for(db_id)
    with committing(shard, db_id, services.bus) as write:
        rows = [e for e in entries if isinstance(e, StoredObject)]
        store_objects(write.store, rows)
        for departure in entries:
            if isinstance(departure, Departure):
                write.store.record_departure(
                    departure.table, departure.key, departure.realm_id, departure.rev
                )
        write.adopt(upto)


def _register_tables(services: Services, db_id: str, schema: dict) -> None:
    with services.control.begin() as connection:
        known = table_store.get_tables(connection, db_id)
        for name, declaration in schema.items():
            if isinstance(declaration, str) and name not in known:
                table_store.register_table(
                    connection, db_id, name, declaration.startswith("@"), table_prefix(name),
                    primary_key_path(declaration),
                )


def _add_demo_users(services: Services, db_id: str, demo_users: dict) -> None:
    with services.control.begin() as connection:
        for email in demo_users:
            users.add_demo_user(connection, db_id, email)
