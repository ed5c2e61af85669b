"""One ``/sync`` request from start to finish, without any web framework.

1. Read the request and register the tables it names (stable ``idPrefix``es;
   only for logged-in users, and up to ``max_tables`` per database).
2. Apply its client transactions in shard transactions under the revision
   lock, and commit: nothing is acknowledged before it is stored. A big
   request commits every ``KEYS_PER_COMMIT`` keys or ``TRANSACTIONS_PER_COMMIT``
   transactions, so that other writers of the database get the lock in
   between; a resend after a crash between two commits skips the transactions
   already recorded as applied.
3. Stream the answer: the realms, the schema echo, the rejections and the
   changes the client has not seen, up to the revision in ``serverRevision``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from dxc import tson
from dxc.access import Principal, RealmAccess
from dxc.bus.base import Bus
from dxc.bus.commits import committing
from dxc.protocol.request import ClientTransaction, Operation, SyncRequest, parse_sync_request
from dxc.protocol.revisions import decode_revision, encode_revision
from dxc.protocol.schema import echo_schema, is_synced, synced_tables, y_tables
from dxc.protocol.ymessages import YMessage, to_tson
from dxc.storage import tables as table_store
from dxc.storage.objects import CounterNotes, ObjectStore
from dxc.storage.router import PLACEMENT_TTL, Shard, ShardRouter
from dxc.storage.waits import holding_lock
from dxc.storage.ydocs import YDocStore
from dxc.sync.apply import ApplyResult, TransactionApplier, claimable, claimant
from dxc.sync.invites import Invitation
from dxc.sync.pull import plan_pull, pull_changes
from dxc.sync.ydocs import UpdateAcceptor, missing_updates, refusal

#: Keys, or client transactions (each a savepoint), per shard transaction before a
#: big request lets other writers of the database in (a commit every ~0.25 s).
KEYS_PER_COMMIT = 2000
TRANSACTIONS_PER_COMMIT = 100
#: A chunk this small (what a device usually pushes) holds the revision lock without
#: yielding to the worker's other requests (``dxc.storage.waits``): a few milliseconds. A
#: bigger one yields at every statement, or it would stall the whole worker that long.
UNYIELDING_KEYS = 200
UNYIELDING_TRANSACTIONS = 10
#: Tables a database may get from anonymous syncs (read-only clients of a public app).
ANONYMOUS_TABLES = 50
#: Unknown tables an anonymous sync may look for data in beyond that (an index probe each).
ANONYMOUS_TABLE_CHECKS = 50


@dataclass(frozen=True)
class SyncOutcome:
    """What a sync did, for logs and metrics."""

    applied: int
    rejected: int


class SyncService:
    def __init__(
        self,
        control: Engine,
        router: ShardRouter,
        bus: Bus,
        send_invites: Callable[[str, Sequence[Invitation]], None] | None = None,
        max_tables: int = 1000,
        y_stored: Callable[[str], None] | None = None,
    ) -> None:
        """``bus`` tells every worker's sockets about a committed change;
        ``send_invites`` mails the invitations of committed transactions;
        ``y_stored`` hears of each database a sync stored Y updates of."""
        self.y_stored = y_stored
        self.control = control
        self.router = router
        self.bus = bus
        self.send_invites = send_invites
        self.max_tables = max_tables
        #: db id -> (its table registry, valid until): read again when it expires.
        self._registry: dict[str, tuple[dict[str, table_store.TableInfo], float]] = {}

    def sync(
        self, db_id: str, principal: Principal, body: bytes
    ) -> tuple[SyncOutcome, Iterator[str]]:
        """Apply ``body`` and return the outcome and the answer's text pieces.

        Everything that can refuse the request (bad TSON, a broken envelope,
        an unknown database) raises before the first piece is produced.
        """
        shard = self.router.shard_for(db_id)
        request = parse_sync_request(tson.loads(body))
        tables = self._register_tables(db_id, shard, principal, request)
        since = self._since(db_id, shard, request)
        result, upto, notes = ApplyResult(), None, CounterNotes()
        transactions = _refuse_unknown_tables(request.transactions, tables, self.max_tables)
        for chunk in _chunks(transactions):
            chunk_result, committed = self._apply(
                shard, db_id, principal, request, tables, since, chunk
            )
            result.merge(chunk_result)
            if committed is not None:
                upto, notes = committed
        if result.invitations and self.send_invites is not None:
            self.send_invites(db_id, result.invitations)
        y_answers, y_rev = self._store_y_updates(db_id, shard, principal, request)
        if y_rev is not None:
            upto, notes = y_rev, CounterNotes()
        outcome = SyncOutcome(len(result.applied), len(result.rejections))
        prefixes = {name: info.id_prefix for name, info in tables.items()}
        answer = self._answer(
            db_id, shard, principal, request, since, (upto, notes), result, prefixes, y_answers
        )
        return outcome, answer

    def _apply(
        self,
        shard: Shard,
        db_id: str,
        principal: Principal,
        request: SyncRequest,
        tables: dict[str, table_store.TableInfo],
        since: int | None,
        chunk: list[ClientTransaction],
    ) -> tuple[ApplyResult, tuple[int, CounterNotes] | None]:
        """Apply ``chunk`` in one shard transaction: what it did, and the revision it
        committed with the counter's notes at it (None when a refusal rolled it back
        whole: ``ApplyResult.undo``)."""
        try:
            with (
                ExitStack() as lock_held,
                committing(shard, db_id, self.bus, request.client_identity) as write,
            ):
                claimed = write.claim(
                    claimant(principal), request.client_identity, claimable(chunk)
                )
                if _small(chunk):  # the revision lock is held: until the commit
                    lock_held.enter_context(holding_lock())
                applier = TransactionApplier(
                    write.store,
                    RealmAccess(write.store, principal, shard.standing),
                    tables,
                    request.client_identity,
                    write.rev,
                    lambda op: self._base_revision(request, shard, op, since),
                )
                result = applier.apply_all(chunk, claimed)
                if result.undo:
                    raise _Undone(result)
        except _Undone as undone:
            return undone.result, None
        result.committed.add(write.rev)
        return result, (write.rev, write.store.notes)

    def _store_y_updates(
        self, db_id: str, shard: Shard, principal: Principal, request: SyncRequest
    ) -> tuple[list[YMessage], int | None]:
        """Store the request's Y updates, after its data changes (a document's parent
        may be new): their acks and refusals, and the revision if one was stored."""
        answers = [refusal(bad.message) for bad in request.y_refused if bad.message]
        if not request.y_updates:
            return answers, None
        with committing(shard, db_id, self.bus, request.client_identity) as write:
            acceptor = UpdateAcceptor(write, principal, request.client_identity)
            for message in request.y_updates:
                answer = acceptor.accept(message, missing_parent_refused=True)
                if answer is not None:
                    answers.append(answer)
        if acceptor.stored and self.y_stored is not None:
            self.y_stored(db_id)
        return answers, write.rev if acceptor.stored else None

    def _register_tables(
        self, db_id: str, shard: Shard, principal: Principal, request: SyncRequest
    ) -> dict[str, table_store.TableInfo]:
        """The database's tables, registering new ones and key paths learnt from
        ``primaryKey`` (sent only sometimes: a missing one never erases a known one).

        No more than ``max_tables`` per database. An anonymous client only reads:
        it adds a table only while the database has fewer than
        ``ANONYMOUS_TABLES``, or if the table already holds data (imported
        without a schema), so that it cannot grow the database for good.

        A registry only grows (tables are added, unknown key paths filled in),
        so a copy read a moment ago, in this process, answers every request
        that would add nothing to it; one that would is decided on the
        control database. The copy expires like a placement (a hard delete).
        """
        cached, valid_until = self._registry.get(db_id, ({}, 0.0))
        if valid_until >= time.monotonic() and not self._adds_to(cached, request):
            return cached
        with self.control.begin() as connection:
            tables = table_store.get_tables(connection, db_id)
            wanted = [
                (name, entry)
                for name, entry in request.schema.items()
                if is_synced(name, entry) and self._registers(tables.get(name), entry)
            ]
            if principal.is_anonymous:
                wanted = self._readable_tables(db_id, shard, tables, wanted)
            for name, entry in wanted:
                if name not in tables and len(tables) >= self.max_tables:
                    continue
                tables[name] = table_store.register_table(
                    connection,
                    db_id,
                    name,
                    entry.get("generatedGlobalId") is True,
                    entry.get("idPrefix") if isinstance(entry.get("idPrefix"), str) else None,
                    _key_path(entry),
                )
        self._registry[db_id] = (tables, time.monotonic() + PLACEMENT_TTL)
        return tables

    def _adds_to(self, tables: dict[str, table_store.TableInfo], request: SyncRequest) -> bool:
        """Whether ``request`` may add to ``tables``: a synced table (or a key path)
        it does not hold, or a write to a table it does not hold."""
        return any(
            is_synced(name, entry) and self._registers(tables.get(name), entry)
            for name, entry in request.schema.items()
        ) or any(
            op.table not in tables for t in request.transactions for op in t.operations
        )

    @staticmethod
    def _readable_tables(
        db_id: str,
        shard: Shard,
        tables: dict[str, table_store.TableInfo],
        wanted: list[tuple[str, dict[str, Any]]],
    ) -> list[tuple[str, dict[str, Any]]]:
        """Of the tables an anonymous client would add, those it may add."""
        room = max(0, ANONYMOUS_TABLES - len(tables))
        new = [name for name, _ in wanted if name not in tables]
        allowed = set(new[:room])
        if len(new) > room:
            with shard.transaction(read_only=True) as connection:
                store = ObjectStore(connection, db_id)
                probes = new[room : room + ANONYMOUS_TABLE_CHECKS]
                allowed.update(name for name in probes if store.has_rows(name))
        return [(name, entry) for name, entry in wanted if name in tables or name in allowed]

    @staticmethod
    def _registers(known: table_store.TableInfo | None, entry: dict[str, Any]) -> bool:
        """Whether a schema entry adds a table, or the key path of a known one."""
        return known is None or (known.key_path is None and _key_path(entry) is not None)

    @staticmethod
    def _since(db_id: str, shard: Shard, request: SyncRequest) -> int | None:
        """The client's revision on ``shard``, or None when it needs everything."""
        if request.last_pull is None or request.db_id != db_id:
            return None
        revisions = decode_revision(request.last_pull.server_revision)
        return None if revisions is None else revisions.get(shard.id)

    @staticmethod
    def _base_revision(
        request: SyncRequest, shard: Shard, op: Operation, since: int | None
    ) -> int:
        """The server revision the client's data was at when it made ``op``."""
        candidates = [
            base
            for base in request.base_revs
            if op.rev is not None and base.table == op.table and base.client_rev <= op.rev
        ]
        if candidates:
            best = max(candidates, key=lambda base: base.client_rev)
            revisions = decode_revision(best.server_rev)
            if revisions is not None and shard.id in revisions:
                return revisions[shard.id]
        return since or 0

    def _answer(
        self,
        db_id: str,
        shard: Shard,
        principal: Principal,
        request: SyncRequest,
        since: int | None,
        committed: tuple[int | None, CounterNotes],
        result: ApplyResult,
        prefixes: dict[str, str | None],
        y_answers: list[YMessage],
    ) -> Iterator[str]:
        """The answer, up to the revision in ``committed`` (with the counter's notes at
        it), or up to the head when the request committed nothing."""
        upto, notes = committed
        with shard.reads() as connection:
            store = ObjectStore(connection, db_id, notes)
            if upto is None:
                upto = store.current_revision()
            realm_set, plan = plan_pull(
                RealmAccess(store, principal, shard.standing),
                frozenset(synced_tables(request.schema)),
                request.last_pull,
                since,
                upto,
                result.committed,
            )
            yield (
                '{"serverRevision":%s,"dbId":%s,"realms":%s,"inviteRealms":%s,'
                '"schema":%s,"rejections":%s,"changes":['
                % (
                    json.dumps(encode_revision({shard.id: upto})),
                    json.dumps(db_id),
                    json.dumps(realm_set.realms, ensure_ascii=False),
                    json.dumps(realm_set.invites, ensure_ascii=False),
                    tson.dumps(echo_schema(request.schema, prefixes)),
                    json.dumps(result.rejections, ensure_ascii=False),
                )
            )
            changes = pull_changes(store, plan, result.touched, result.written, result.as_sent)
            for index, entry in enumerate(changes):
                yield entry if index == 0 else "," + entry
            yield '],"yMessages":['
            y_since = _y_revision(request, shard, since)
            news = missing_updates(
                YDocStore(connection, db_id),
                shard.id,
                plan.known if y_since is not None else (),
                y_tables(request.schema),
                y_since or 0,
                upto,
                request.client_identity,
                principal.user_id,
            )
            for index, message in enumerate(itertools.chain(y_answers, news)):
                yield to_tson(message) if index == 0 else "," + to_tson(message)
            yield "]}"


class _Undone(Exception):
    """Rolls back a shard transaction whose lone client transaction was refused."""

    def __init__(self, result: ApplyResult) -> None:
        super().__init__()
        self.result = result


def _y_revision(request: SyncRequest, shard: Shard, since: int | None) -> int | None:
    """The revision up to which the client has every Y update of its known realms:
    its ``yServerRevision``, else its ``serverRevision`` (which the client sets both to)."""
    if since is None or request.last_pull is None:
        return None
    revisions = decode_revision(request.last_pull.y_server_revision)
    if revisions is None or shard.id not in revisions:
        return since
    return revisions[shard.id]


def _key_path(entry: dict[str, Any]) -> str | None:
    key_path = entry.get("primaryKey")
    return key_path if isinstance(key_path, str) and 0 < len(key_path) <= 255 else None


def _refuse_unknown_tables(
    transactions: list[ClientTransaction],
    tables: dict[str, table_store.TableInfo],
    max_tables: int,
) -> list[ClientTransaction]:
    """Mark transactions that write to unregistered tables as refused (a
    rejection inside the answer, which rolls them back on the device)."""
    marked = []
    for transaction in transactions:
        unknown = sorted({op.table for op in transaction.operations} - tables.keys())
        if unknown and not transaction.error:
            transaction = dataclasses.replace(
                transaction,
                error=f"table {unknown[0]!r} is not in the synced schema, or the database "
                f"already has the most tables allowed ({max_tables}, DXC_MAX_TABLES)",
            )
        marked.append(transaction)
    return marked


def _chunks(transactions: list[ClientTransaction]) -> Iterator[list[ClientTransaction]]:
    """Consecutive runs of whole transactions of about ``KEYS_PER_COMMIT`` keys,
    at most ``TRANSACTIONS_PER_COMMIT`` transactions."""
    chunk: list[ClientTransaction] = []
    keys = 0
    for transaction in transactions:
        chunk.append(transaction)
        keys += _keys(transaction)
        if keys >= KEYS_PER_COMMIT or len(chunk) >= TRANSACTIONS_PER_COMMIT:
            yield chunk
            chunk, keys = [], 0
    if chunk:
        yield chunk


def _keys(transaction: ClientTransaction) -> int:
    """The keys ``transaction`` names (a where-clause counts as one)."""
    return sum(max(1, len(op.keys)) for op in transaction.operations) or 1


def _small(chunk: list[ClientTransaction]) -> bool:
    return len(chunk) <= UNYIELDING_TRANSACTIONS and sum(map(_keys, chunk)) <= UNYIELDING_KEYS
