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

For speed, batches are written in threads of their own while the next one
is read and decoded, two at once on PostgreSQL (see :func:`_committer`), and
an object's value is stored as the JSON text the source sent, checked but
not encoded again.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from dxc.access.index import store_objects
from dxc.bus.commits import committing
from dxc.cooperative import taking_turns
from dxc.protocol import ProtocolError
from dxc.protocol.identifiers import (
    KEY_BYTES,
    TABLE_BYTES,
    check_identifier,
    identifier_problem,
)
from dxc.protocol.revisions import decode_revision
from dxc.protocol.schema import primary_key_path, table_prefix
from dxc.services import Services
from dxc.storage import tables as table_store
from dxc.storage import users
from dxc.storage.objects import (
    AppliedTransaction,
    ConsistentOperation,
    StoredObject,
    refresh_statistics,
)

#: Rows per transaction (more when one revision holds more).
BATCH_ROWS = 5000
#: Batches being written at once (see :func:`_committer`).
IN_FLIGHT = 2
#: How an object line of a dxc-server source goes on after its other fields.
DATA_FIELD = ',"data":'

_decoder = json.JSONDecoder()


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
    #: Blobs and Y.js documents at the source (None: a source that does not say).
    blobs: int | None = None
    y_documents: int | None = None
    complete: bool = False
    #: The source takes no more writes (``flask dxc redirect``): ``head`` is its last.
    frozen: bool = False


#: What a stream's lines are applied as, in revision order.
Entry = StoredObject | Departure | AppliedTransaction | ConsistentOperation
Entries = list[Entry]

#: Called after each commit: (checkpoint, rows in that commit).
Progress = Callable[[Round, int, int], None]


def apply_stream(
    services: Services,
    db_id: str,
    lines: Iterable[bytes],
    progress: Progress,
    shard: int | None = None,
) -> Round:
    """Apply the lines of one ``export/stream?since=…`` answer; the round it was.

    ``shard``: the source shard of the revisions applied so far (None: none yet)."""
    found = Round()
    pending: Entries = []
    objects = 0
    with _committer(services, db_id, found, progress) as commit:
        for raw in taking_turns(lines):
            text = raw.decode()
            entry = _object_entry(text)
            if entry is None:
                line = json.loads(text)
                if not isinstance(line, dict):
                    raise ProtocolError(f"not a line of the stream: {text[:200]}")
                entry = _other_line(services, db_id, line, found, shard)
                if entry is None:
                    continue
            if len(pending) >= BATCH_ROWS and entry.rev != pending[-1].rev:
                commit(pending, pending[-1].rev)
                pending = []
            pending.append(entry)
            objects += isinstance(entry, StoredObject)
        if not found.complete:
            raise ProtocolError("the source's answer ended early")
        commit(pending, found.head)
    # A big round (the first copy above all): the replica's clients push next.
    refresh_statistics(services.router.shard_for(db_id).engine, objects)
    return found


Commit = Callable[[Entries, int], None]


@contextmanager
def _committer(
    services: Services, db_id: str, found: Round, progress: Progress
) -> Iterator[Commit]:
    """``commit(entries, upto)``: a batch is written in a thread of its own while the
    caller reads on, and so that the batches commit in order.

    On PostgreSQL a batch of live objects writes its rows while the previous
    batch still commits (two transactions at once: the server's work is most of
    the copy's), and takes the revision lock and commits only once that one
    did, or rolls back if it failed. Nothing else the two write is the same row:
    a stream holds each object once, and only deletions and departures touch
    other rows of an object (its Y documents), so a batch holding any of them
    starts once the previous one ended, as every batch does on SQLite (one
    writer). Applied txids and where-clause operations may ride with live
    objects: each is in the stream once too, and a batch replaces only the
    operations of its own revisions. Leaving the block waits for every batch; the
    first error is raised."""
    overlap = services.router.shard_for(db_id).engine.dialect.name == "postgresql"
    flight: deque[Future[None]] = deque()

    def write(entries: Entries, upto: int, after: Future[None] | None) -> None:
        _commit(services, db_id, entries, upto, after)
        progress(found, upto, len(entries))

    with ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="dxc-replication") as pool:
        def commit(entries: Entries, upto: int) -> None:
            alone = not (overlap and all(
                isinstance(entry, (AppliedTransaction, ConsistentOperation))
                or (isinstance(entry, StoredObject) and not entry.deleted)
                for entry in entries
            ))
            while flight and (alone or len(flight) >= IN_FLIGHT):
                flight.popleft().result()
            flight.append(pool.submit(write, entries, upto, flight[-1] if flight else None))

        yield commit  # on an error here, leaving the pool waits for the batches in flight
        while flight:
            flight.popleft().result()


def _other_line(
    services: Services, db_id: str, line: dict[str, Any], found: Round, shard: int | None
) -> Entry | None:
    """Act on a line that is not an object line of the usual shape; its entry, if it has one."""
    kind = line.get("type")
    if kind == "header":
        found.shard, found.head = _revision(line.get("revision"))
        if shard is not None and found.shard != shard:
            raise ProtocolError(
                "the source database moved to another shard: its revisions mean"
                " something else now; start the replication again"
            )
        found.counts = {str(k): int(v) for k, v in (line.get("counts") or {}).items()}
        found.blobs = _count(line.get("blobs"))
        found.y_documents = _count(line.get("yDocuments"))
        found.frozen = line.get("frozen") is True
    elif kind == "schema":
        _register_tables(services, db_id, line.get("tables") or {})
    elif kind == "demoUsers":
        _add_demo_users(services, db_id, line.get("users") or {})
    elif kind == "error":
        raise ProtocolError(f"the source's export failed: {line.get('message')}")
    elif kind == "end":
        found.complete = True
    elif kind == "applied":
        return _applied(line)
    elif kind == "consistent":
        return _consistent(line)
    elif kind in (None, "departure"):
        return _entry(line)
    else:
        raise ProtocolError(
            f"the source sends lines of kind {str(kind)[:40]!r}, which this installation"
            " does not know: upgrade it to the source's version first"
        )
    return None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _revision(token: object) -> tuple[int, int]:
    revisions = decode_revision(token)
    if not revisions or len(revisions) != 1:
        raise ProtocolError(f"the source's revision {token!r} is not one of one shard")
    ((shard, head),) = revisions.items()
    return shard, head


def _object_entry(text: str) -> StoredObject | None:
    """An object line as a dxc-server source writes it, ``{…scalars…,"data":VALUE}``,
    read without encoding VALUE again: its text, parsed to check it, is stored as it
    came. None for any other line (read the usual way)."""
    at = text.find(DATA_FIELD)
    if at < 0:
        return None
    start = at + len(DATA_FIELD)
    try:
        head = _head(text[:at])
        value, end = _decoder.raw_decode(text, start)
    except ValueError:
        return None
    if head is None or text[end:].strip() != "}":
        return None
    return _stored(head, value, lambda: text[start:end])


def _head(text: str) -> dict[str, Any] | None:
    """The fields before ``"data"`` (``text`` lacks the closing brace), decoded; None
    unless they are an object of scalars without ``data`` or ``type``."""
    plain = _PLAIN_HEAD.fullmatch(text)
    if plain is not None:
        realm, table, key, rev, owner = plain.groups()
        return {"realm": realm, "table": table, "id": key, "rev": int(rev), "owner": owner}
    head = json.loads(text + "}")
    if (
        not isinstance(head, dict) or "data" in head or "type" in head
        or any(isinstance(v, (dict, list)) for v in head.values())
    ):
        return None
    return head


_STRING = r'"([^"\\\x00-\x1f]*)"'  # a JSON string without escapes: its text is its value
#: The head of an object line in the order :mod:`dxc.manage.exporter` writes it, with
#: strings that need no decoding (nearly all): matched, not parsed.
_PLAIN_HEAD = re.compile(
    rf'\{{"realm":{_STRING},"table":{_STRING},"id":{_STRING},"rev":(0|[1-9][0-9]*),'
    rf'"owner":(?:null|{_STRING})'
)


def _entry(line: dict) -> StoredObject | Departure:
    if line.get("type") == "departure":
        return Departure(*_place(line))
    data = line.get("data")
    return _stored(line, data, lambda: json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def _applied(line: dict) -> AppliedTransaction:
    """A client transaction the source applied, as its line names it."""
    fields = line.get("user"), line.get("client"), line.get("txid"), line.get("rev")
    if not all(isinstance(value, str) for value in fields[:3]) or not isinstance(fields[3], int):
        raise ProtocolError(f"not an applied transaction line: {str(line)[:200]}")
    return AppliedTransaction(*fields)


def _consistent(line: dict) -> ConsistentOperation:
    """A where-clause operation the source recorded, as its line names it."""
    table, user, client = line.get("table"), line.get("user"), line.get("client")
    rev, operation = line.get("rev"), line.get("operation")
    if not (
        isinstance(table, str) and (user is None or isinstance(user, str))
        and isinstance(client, str) and isinstance(rev, int) and not isinstance(rev, bool)
        and isinstance(operation, str)
    ):
        raise ProtocolError(f"not a where-clause operation line: {str(line)[:200]}")
    if not _storable(table, TABLE_BYTES):
        check_identifier(table, "a replicated where-clause operation's table", TABLE_BYTES)
    return ConsistentOperation(table, user, client, rev, operation)


def _stored(line: dict, data: Any, text: Callable[[], str]) -> StoredObject:
    """The row of an object line whose ``data`` is ``data``, as JSON ``text()``."""
    table, key, realm_id, rev = _place(line)
    owner = line.get("owner")
    owner = owner if isinstance(owner, str) else None
    if data is None:
        return StoredObject(table, key, realm_id, owner, rev, True, None)
    if not isinstance(data, dict):
        raise ProtocolError(f"{table}/{key}: data must be an object or null")
    return StoredObject(table, key, realm_id, owner, rev, False, text())


def _place(line: dict) -> tuple[str, str, str, int]:
    """The checked table, id, realm and revision of a change line."""
    table, key, realm_id = line.get("table"), line.get("id"), line.get("realm")
    rev = line.get("rev")
    if not (
        isinstance(table, str) and isinstance(key, str) and isinstance(realm_id, str)
        and isinstance(rev, int)
    ):
        raise ProtocolError(f"not a change line: {str(line)[:200]}")
    if not _storable(table, TABLE_BYTES):
        check_identifier(table, "a replicated table", TABLE_BYTES)
    if not key or identifier_problem(key, KEY_BYTES):
        check_identifier(key, f"{table}: a replicated id", KEY_BYTES)
    if not _storable(realm_id, KEY_BYTES):
        check_identifier(realm_id, f"{table}/{key}: a replicated realm", KEY_BYTES)
    return table, key, realm_id, rev


@lru_cache(maxsize=4096)
def _storable(name: str, max_bytes: int) -> bool:
    """Whether ``name`` is fit to store as an identifier (remembered: table names and
    realm ids repeat on most lines)."""
    return bool(name) and identifier_problem(name, max_bytes) is None


def _commit(
    services: Services,
    db_id: str,
    entries: Entries,
    upto: int,
    after: Future[None] | None,
) -> None:
    """Write ``entries`` and raise the counter to ``upto`` in one transaction, which
    commits only after the batch ``after`` (and rolls back if that one failed)."""
    shard = services.router.shard_for(db_id)
    with committing(shard, db_id, services.bus) as write:
        rows = [e for e in entries if isinstance(e, StoredObject)]
        store_objects(write.store, rows)
        for departure in entries:
            if isinstance(departure, Departure):
                write.store.record_departure(
                    departure.table, departure.key, departure.realm_id, departure.rev
                )
        write.store.record_applied([e for e in entries if isinstance(e, AppliedTransaction)])
        write.store.replace_consistent_operations(
            [e for e in entries if isinstance(e, ConsistentOperation)]
        )
        if after is not None:
            after.result()
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
