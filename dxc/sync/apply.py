"""Applying the client transactions of one sync request to the store.

Each client transaction (one ``txid``) runs in a savepoint (a lone one in the
shard transaction itself, rolled back whole if refused): it is applied whole or
not at all. Its operations run in order against the savepoint, the
working copy: a realm created by one operation grants rights to the next.
A refused transaction is reported in ``rejections`` and its keys are sent
back with the server's state, which is how the client rolls its local
change back (it never reads ``rejections``). A transaction already applied
by an earlier, lost request of the same client is skipped.

The upload a client makes when a user logs in (``txid`` ``upload-…``)
bundles everything the device held before; it is judged key by key, so
that one refused object does not roll back all the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dxc import tson
from dxc.access import (
    ACCESS_TABLES,
    PUBLIC_REALM,
    REALMS_TABLE,
    ROLES_TABLE,
    Principal,
    RealmAccess,
)
from dxc.access import members as member_rules
from dxc.access.index import store_objects
from dxc.access.lifecycle import RealmLifecycle
from dxc.access.rejections import InvalidOperation, PermissionDenied, Rejection
from dxc.access.rules import WriteRules
from dxc.cooperative import taking_turns
from dxc.protocol.changes import ChangeSpecError, apply_change_spec
from dxc.protocol.criteria import Criteria
from dxc.protocol.keys import decode_wire_key, encode_wire_key
from dxc.protocol.request import ClientTransaction, Operation
from dxc.storage.clock import utcnow
from dxc.storage.objects import ObjectStore, StoredObject
from dxc.storage.tables import TableInfo
from dxc.sync.invites import Invitation

#: The ``txid`` prefix of the upload made at login (listSyncifiedChanges).
UPLOAD_PREFIX = "upload-"
#: The value the client gives ``realmId``/``owner`` while logged out; never valid here.
UNAUTHORIZED = "unauthorized"
#: Key-by-key uploads write these first, so that objects find their realm.
_UPLOAD_ORDER = {REALMS_TABLE: 0, member_rules.MEMBERS_TABLE: 1, ROLES_TABLE: 2}
#: Bytes a where-clause ``modify`` may write (change spec size times objects matched):
#: one small request must not make the worker build gigabytes of values.
MAX_CRITERIA_WRITE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class _Replay:
    """A where-clause operation another client committed, to rebase later writes on."""

    issuer: str
    kind: str
    criteria: Criteria
    change_spec: Any


@dataclass
class ApplyResult:
    #: Keys whose server state goes back to the client, per table.
    touched: dict[str, set[str]] = field(default_factory=dict)
    rejections: list[dict[str, str]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    #: Invitations of committed transactions, to mail after the commit.
    invitations: list[Invitation] = field(default_factory=list)
    #: The last row each applied transaction stored per (table, key): the answer
    #: echoes those written at its revision without reading them back.
    written: dict[tuple[str, str], StoredObject] = field(default_factory=dict)
    #: Of those, the rows stored exactly as the client sent them and not named by a
    #: transaction it was refused: its device holds them already (not sent back:
    #: :func:`dxc.sync.pull.pull_changes`).
    as_sent: dict[tuple[str, str], StoredObject] = field(default_factory=dict)
    #: The revisions its writes were committed at (set by the caller, after the commit).
    committed: set[int] = field(default_factory=set)
    #: A transaction applied without a savepoint was refused: the caller must roll
    #: the whole shard transaction back (see :meth:`TransactionApplier.apply_all`).
    undo: bool = False

    def touch(self, pairs: Iterable[tuple[str, str]]) -> None:
        for table, key in pairs:
            self.touched.setdefault(table, set()).add(key)

    def merge(self, other: ApplyResult) -> None:
        """Add what a later commit of the same request did."""
        for table, keys in other.touched.items():
            self.touched.setdefault(table, set()).update(keys)
        self.rejections.extend(other.rejections)
        self.applied.extend(other.applied)
        self.invitations.extend(other.invitations)
        self.written.update(other.written)
        self.as_sent.update(other.as_sent)
        self.committed.update(other.committed)


def claimable(transactions: list[ClientTransaction]) -> set[str]:
    """The txids a push records as applied (a broken transaction is refused, unrecorded)."""
    return {t.txid for t in transactions if not t.error}


def claimant(principal: Principal) -> str:
    """Whose applied txids a principal's are (a client identity alone is no secret)."""
    return principal.user_id or ""


class TransactionApplier:
    """Applies client transactions at revision ``rev`` for one principal."""

    def __init__(
        self,
        store: ObjectStore,
        access: RealmAccess,
        tables: dict[str, TableInfo],
        client_identity: str,
        rev: int,
        base_revision: Callable[[Operation], int],
    ) -> None:
        self.store = store
        self.access = access
        self.rules = WriteRules(access)
        self.tables = tables
        self.client_identity = client_identity
        self.rev = rev
        self.base_revision = base_revision
        self.principal = access.principal
        self.user_id = access.principal.user_id
        self.now = utcnow()
        members = tables.get(member_rules.MEMBERS_TABLE)
        self.lifecycle = RealmLifecycle(
            store, access, (members and members.id_prefix) or "mmb", rev, self.now
        )
        self._rebase_cache: dict[tuple[str, int], list[_Replay]] = {}
        self._issuer_rules: dict[str, WriteRules] = {}
        self._invitations: list[Invitation] = []
        self._written: dict[tuple[str, str], StoredObject] = {}
        self._as_sent: dict[tuple[str, str], StoredObject] = {}
        self.result = ApplyResult()

    def apply_all(self, transactions: list[ClientTransaction], claimed: set[str]) -> ApplyResult:
        """Apply ``transactions``, skipping those an earlier request of this client
        already applied.

        Their txids (:func:`claimable`) were claimed first, by the caller with the
        revision, in one statement that also tells which were recorded before:
        ``claimed`` are those recorded now. The claims of refused transactions
        are dropped.

        A lone transaction (what a device usually pushes) runs without a
        savepoint (two round trips fewer while the revision lock is held): if it
        is refused, ``undo`` asks the caller to roll the shard transaction back,
        which drops its writes, its claim and the revision it took.
        """
        done = claimable(transactions) - claimed
        alone = len(transactions) == 1
        for transaction in transactions:
            self.result.touch(transaction.named_keys)
            if transaction.txid in done:
                continue
            upload = transaction.txid.startswith(UPLOAD_PREFIX) and not transaction.error
            parts = _per_key(transaction) if upload else [transaction]
            savepoint = upload or not alone
            refused = [rejection for part in parts if (rejection := self._try(part, savepoint))]
            self.result.undo = bool(refused) and not savepoint
            self.result.rejections.extend(
                {"name": r.name, "message": str(r), "txid": transaction.txid} for r in refused
            )
            for pair in transaction.named_keys if refused else ():
                self.result.as_sent.pop(pair, None)  # the device rolls back to the server's
            if upload or not refused:
                self.result.applied.append(transaction.txid)
                done.add(transaction.txid)
        if not self.result.undo:
            self.store.unclaim_applied(
                self._user_key, self.client_identity, claimed.difference(self.result.applied)
            )
        return self.result

    @property
    def _user_key(self) -> str:
        return claimant(self.principal)

    def apply_one(self, transaction: ClientTransaction) -> Rejection | None:
        """Apply a transaction that no client will resend (the REST API): judged
        like a client's, not recorded as applied; the rejection if refused."""
        self.result.touch(transaction.named_keys)
        return self._try(transaction, savepoint=True)

    def _try(self, transaction: ClientTransaction, savepoint: bool) -> Rejection | None:
        """Apply ``transaction`` (in a savepoint if ``savepoint``); the rejection if
        it was refused (without a savepoint its writes stay: the caller rolls back)."""
        self.lifecycle.begin()
        self._invitations = []
        self._written = {}
        self._as_sent = {}
        try:
            self._apply_transaction(transaction, savepoint)
        except Rejection as rejection:
            self._forget_access()  # what it learnt came from the rolled-back savepoint
            return rejection
        self.result.invitations.extend(self._invitations)
        self.result.written.update(self._written)
        self.result.as_sent.update(self._as_sent)
        return None

    def _apply_transaction(self, transaction: ClientTransaction, savepoint: bool) -> None:
        if self.user_id is None:
            raise PermissionDenied("log in to push changes")
        if transaction.error:
            raise InvalidOperation(transaction.error)
        try:
            with self.store.connection.begin_nested() if savepoint else nullcontext():
                for operation in transaction.operations:
                    handler = getattr(self, f"_{operation.type}")
                    self._write(list(handler(operation)), operation)
                finished = self.lifecycle.finish()
                self.result.touch((row.tbl, row.key) for row in finished)
                self._written.update(((row.tbl, row.key), row) for row in finished)
        except ChangeSpecError as error:
            raise InvalidOperation(str(error)) from None

    def _write(self, rows: list[StoredObject], op: Operation) -> None:
        taken = store_objects(self.store, rows, new_only=op.type == "insert")
        if taken:
            keys = {key for _table, key in taken}
            raise _key_in_use(op.table, next(key for key in op.keys if key in keys))
        self.result.touch((row.tbl, row.key) for row in rows)
        self._written.update(((row.tbl, row.key), row) for row in rows)
        if any(row.tbl in ACCESS_TABLES for row in rows):
            self._forget_access()

    def _forget_access(self) -> None:
        """Drop what the principal's and issuers' access learnt (rights changed)."""
        self.access.forget()
        self._issuer_rules.clear()

    # --- operations ---------------------------------------------------------

    def _insert(self, op: Operation) -> Iterator[StoredObject]:
        """New objects. A data table's keys are not read first: the write itself finds
        a key that holds a live object and refuses the transaction (:meth:`_write`).
        An access table's are, so that such a key is refused before the realm rules
        judge it as a new realm, member or role."""
        existing = self.store.get_many(op.table, op.keys) if op.table in ACCESS_TABLES else {}
        for index, key in enumerate(op.keys):
            if _live(existing.get(key)) is not None:
                raise _key_in_use(op.table, key)
            row = self._new_value_row(op, index, key, None)
            if row is not None:
                yield row

    def _upsert(self, op: Operation) -> Iterator[StoredObject]:
        existing = self.store.get_many(op.table, op.keys)
        for index, key in enumerate(op.keys):
            old = _live(existing.get(key))
            spec = op.spec_for(index) if op.change_specs is not None else None
            if old is not None and spec is not None:
                old_value = tson.loads(old.value)
                yield self._row(op.table, key, old, apply_change_spec(old_value, spec), old_value)
            elif (row := self._new_value_row(op, index, key, old)) is not None:
                yield row

    def _new_value_row(
        self, op: Operation, index: int, key: str, old: StoredObject | None
    ) -> StoredObject | None:
        """The row for the value ``op`` sends for ``key``; None where a later
        where-clause of another client deleted it (rebased: nothing to store, but
        refused all the same where the principal may not write it, or where an
        insert names a key in use, which no write finds then)."""
        written = op.values[index]
        value = self._rebased(op, key, dict(written))
        if value is None:
            if op.type == "insert" and _live(self.store.get_many(op.table, [key]).get(key)):
                raise _key_in_use(op.table, key)
            self._checked(op.table, key, old, dict(written))
            return None
        row = self._row(op.table, key, old, value)
        if value == written and op.table not in ACCESS_TABLES:
            self._as_sent[op.table, key] = row  # no default filled in, nothing rebased
        return row

    def _update(self, op: Operation) -> Iterator[StoredObject]:
        existing = self.store.get_many(op.table, op.keys)
        for index, key in enumerate(op.keys):
            old = _live(existing.get(key))
            if old is None:
                continue  # updating a missing object does nothing, as in IndexedDB
            old_value = tson.loads(old.value)
            value = apply_change_spec(old_value, op.spec_for(index))
            yield self._row(op.table, key, old, value, old_value)

    def _modify(self, op: Operation) -> Iterator[StoredObject]:
        if op.is_additional_chunk:
            return  # the first chunk already ran the criteria over every object
        spec_bytes = len(tson.dumps(op.change_spec))
        for count, (old, value) in enumerate(self._targets(op), 1):
            if op.criteria is not None and count * spec_bytes > MAX_CRITERIA_WRITE_BYTES:
                raise InvalidOperation(
                    f"{op.table}: this modify would write more than "
                    f"{MAX_CRITERIA_WRITE_BYTES} bytes of change specs (max_criteria_write_bytes)"
                )
            new_value = apply_change_spec(value, op.change_spec)
            row = self._judged(op, self._row, op.table, old.key, old, new_value, value)
            if row is not None:
                yield row
        self._record_consistent(op)

    def _delete(self, op: Operation) -> Iterator[StoredObject]:
        if op.criteria is not None and op.is_additional_chunk:
            return
        for old, value in self._targets(op):
            row = self._judged(op, self._tombstone, op.table, old, value)
            if row is not None:
                yield row
        self._record_consistent(op)

    def _judged(
        self, op: Operation, make: Callable[..., StoredObject], *args: Any
    ) -> StoredObject | None:
        """The row ``make(*args)`` builds; None where criteria hit an object the
        principal may not change (skipped: a where-clause cannot know rights)."""
        try:
            return make(*args)
        except PermissionDenied:
            if op.criteria is None:
                raise
            return None

    def _targets(self, op: Operation) -> Iterator[tuple[StoredObject, Any]]:
        """The live objects an operation acts on, with their decoded values.

        Listed keys are taken as they are; criteria run over every object
        the principal can read.
        """
        if op.criteria is None:
            for old in self.store.get_many(op.table, op.keys).values():
                if not old.deleted:
                    yield old, tson.loads(old.value)
            return
        readable = self.access.readable_realms()
        matches = []
        for old in taking_turns(self.store.live_objects(op.table, readable)):
            value = tson.loads(old.value)
            if op.criteria.matches(value, decode_wire_key(old.key)):
                matches.append((old, value))
        self.result.touch((op.table, old.key) for old, _ in matches)
        yield from matches

    def _record_consistent(self, op: Operation) -> None:
        if op.criteria is None:
            return
        operation = {"type": op.type, "criteria": op.criteria_wire}
        if op.change_spec is not None:
            operation["changeSpec"] = op.change_spec
        self.store.record_consistent_operation(
            op.table, self._user_key, self.client_identity, self.rev, tson.dumps(operation)
        )

    # --- rebasing over consistent operations ------------------------------

    def _rebased(self, op: Operation, key: str, value: dict[str, Any]) -> dict[str, Any] | None:
        """Apply to a full write the where-clause operations it was made without.

        The client wrote ``value`` at its base revision; criteria operations
        that other clients committed since then still apply to it if it
        matches them (e.g. a folder rename reaching a file created offline),
        but only where their issuer could have made that change: a user's
        where-clause never reaches into data they have no rights to.
        """
        base = self.base_revision(op)
        if base >= self.rev - 1:
            return value
        primary_key = decode_wire_key(key)
        for replay in self._replays_after(op.table, base):
            if not replay.criteria.matches(value, primary_key):
                continue
            try:
                replayed = self._replay(op.table, key, value, replay)
            except (PermissionDenied, InvalidOperation, ChangeSpecError):
                continue  # the issuer could not have done it: the write stays as it was
            if replayed is None:
                return None
            value = replayed
        return value

    def _replays_after(self, table: str, base: int) -> list[_Replay]:
        criteria_rev = self.store.criteria_rev
        if criteria_rev is not None and base >= criteria_rev:
            return []  # no where-clause operation since the base: nothing to read
        cache_key = (table, base)
        if cache_key not in self._rebase_cache:
            replays = []
            for issuer, text in self.store.consistent_operations_after(
                table, base, self._user_key, self.client_identity
            ):
                operation = tson.loads(text)
                replays.append(
                    _Replay(
                        issuer,
                        operation["type"],
                        Criteria.from_wire(operation["criteria"]),
                        operation.get("changeSpec"),
                    )
                )
            self._rebase_cache[cache_key] = replays
        return self._rebase_cache[cache_key]

    def _replay(
        self, table: str, key: str, value: dict[str, Any], replay: _Replay
    ) -> dict[str, Any] | None:
        """``value`` after ``replay`` (None: deleted), judged with the issuer's rights
        as if ``value`` were stored; raises if the issuer may not touch it."""
        current = dict(value)
        self._fill_defaults(table, key, None, current)
        as_stored = StoredObject(
            table, key, current["realmId"], current.get("owner") or None, self.rev, False, None
        )
        rules = self._rules_of(replay.issuer)
        if replay.kind == "delete":
            rules.check_delete(table, as_stored, current)
            return None
        changed = apply_change_spec(current, replay.change_spec)
        if not isinstance(changed, dict) or not isinstance(changed.get("realmId"), str):
            raise InvalidOperation(f"{table}: a replayed modify left {key!r} without a realm")
        rules.check_change(table, as_stored, lambda: current, changed)
        realm_id, owner = changed["realmId"], changed.get("owner") or None
        if (realm_id, owner) != (current["realmId"], current.get("owner") or None):
            # The writer's own write must stay one it may make.
            self._check_structure(table, key, None, realm_id, owner, changed)
            self.rules.check_create(table, key, changed)
        return changed

    def _rules_of(self, issuer: str) -> WriteRules:
        """The write rules of the user who issued a replayed operation."""
        if issuer == self.user_id:
            return self.rules
        if issuer not in self._issuer_rules:
            self._issuer_rules[issuer] = WriteRules(RealmAccess(self.store, Principal(issuer)))
        return self._issuer_rules[issuer]

    # --- checks -----------------------------------------------------------

    def _row(
        self,
        table: str,
        key: str,
        old: StoredObject | None,
        value: Any,
        old_value: dict[str, Any] | None = None,
    ) -> StoredObject:
        """The row to store for ``value``, after checking the principal may write it."""
        member = self._checked(table, key, old, value, old_value)
        realm_id, owner = value["realmId"], value.get("owner") or None
        if member.send_invite:
            self._invitations.append(self._invitation(key, value))
        if old is not None and old.realm_id != realm_id:
            self.store.record_departure(table, key, old.realm_id, self.rev)
        row = StoredObject(table, key, realm_id, owner, self.rev, False, tson.dumps(value))
        self.lifecycle.note(old, row)
        return row

    def _checked(
        self,
        table: str,
        key: str,
        old: StoredObject | None,
        value: Any,
        old_value: dict[str, Any] | None = None,
    ) -> member_rules.MemberWrite:
        """Check that the principal may write ``value`` (its defaults filled in); what
        the member rules add to it. :class:`PermissionDenied` or
        :class:`InvalidOperation` if not."""
        if not isinstance(value, dict):
            raise InvalidOperation(f"{table}: {key!r} must be an object")
        decoded = _once(lambda: old_value if old_value is not None else tson.loads(old.value))
        self._fill_defaults(table, key, old, value)
        realm_id, owner = value["realmId"], value.get("owner") or None
        self._check_structure(table, key, old, realm_id, owner, value)
        if table == REALMS_TABLE and old is None:
            self.lifecycle.check_new_realm(key)
        member = member_rules.MemberWrite()
        if table == member_rules.MEMBERS_TABLE:
            if old is None:
                member = member_rules.prepare_new(value, self.principal, self.now)
            else:
                member = member_rules.prepare_change(decoded(), value, self.principal, self.now)
        if old is None:
            self.rules.check_create(table, key, value)
        else:
            self.rules.check_change(table, old, decoded, value, member.server_set)
        return member

    def _tombstone(self, table: str, old: StoredObject, value: dict[str, Any]) -> StoredObject:
        self.rules.check_delete(table, old, value)
        row = old.tombstone(self.rev)
        self.lifecycle.note(old, row)
        return row

    def _fill_defaults(
        self, table: str, key: str, old: StoredObject | None, value: dict[str, Any]
    ) -> None:
        """``realmId`` and ``owner`` as the client fills them; a replace keeps the stored ones."""
        if table == REALMS_TABLE:
            value.setdefault("realmId", key)
        if old is None:
            value.setdefault("realmId", self.user_id)
            if not value.get("owner"):
                value["owner"] = self.user_id
        else:
            value.setdefault("realmId", old.realm_id)
            if old.owner is not None:
                value.setdefault("owner", old.owner)

    def _check_structure(
        self,
        table: str,
        key: str,
        old: StoredObject | None,
        realm_id: Any,
        owner: Any,
        value: dict[str, Any],
    ) -> None:
        """Rules that hold for every token, GLOBAL_WRITE included."""
        if not isinstance(realm_id, str) or not realm_id or realm_id == UNAUTHORIZED:
            raise InvalidOperation(f"{table}: {key!r} has no valid realmId")
        if owner is not None and (not isinstance(owner, str) or owner == UNAUTHORIZED):
            raise InvalidOperation(f"{table}: {key!r} has no valid owner")
        if old is None:
            self._check_new_key(table, key)
        if key.startswith("#") and realm_id != self.user_id:
            raise PermissionDenied(f"{table}: {key!r} has a private id and stays private")
        if realm_id == self.user_id and owner not in (None, self.user_id):
            raise PermissionDenied(f"{table}: objects in a private realm belong to its user")
        if table == REALMS_TABLE:
            if realm_id != key:
                raise InvalidOperation(f"realms: the realmId of {key!r} must be its key")
            if old is None and (not key.startswith("rlm") or key == PUBLIC_REALM):
                raise InvalidOperation(f"realms: {key!r} is not a valid new realm id")
        elif table == ROLES_TABLE:
            name = value.get("name")
            if not isinstance(name, str) or key != encode_wire_key([realm_id, name]):
                raise InvalidOperation(f"roles: the key of {key!r} must be [realmId, name]")

    def _check_new_key(self, table: str, key: str) -> None:
        if key.startswith("#") and not key.endswith(f":{self.user_id}"):
            raise PermissionDenied(f"{table}: {key!r} is another user's private id")
        info = self.tables.get(table)
        if info and info.generated_global_id and info.id_prefix:
            bare = key[1:] if key.startswith("#") else key
            if not bare.startswith(info.id_prefix):
                raise InvalidOperation(
                    f"{table}: key {key!r} does not start with the table's prefix "
                    f"{info.id_prefix!r}"
                )

    def _invitation(self, key: str, value: dict[str, Any]) -> Invitation:
        realm = self.store.get_many(REALMS_TABLE, [value["realmId"]]).get(value["realmId"])
        about = tson.loads(realm.value) if realm is not None and realm.value else {}
        name = value.get("name")
        return Invitation(
            member_id=key,
            email=value["email"],
            name=name if isinstance(name, str) else None,
            realm_id=value["realmId"],
            realm_name=_text(about.get("name")),
            represents=_text(about.get("represents")),
            inviter_name=self.principal.name,
            inviter_email=self.principal.email,
            realm_props=about,
        )


def _per_key(transaction: ClientTransaction) -> list[ClientTransaction]:
    """One transaction per key (realms, members and roles first)."""
    parts = []
    for op in sorted(transaction.operations, key=lambda o: _UPLOAD_ORDER.get(o.table, 3)):
        if op.criteria is not None or len(op.keys) < 2:
            parts.append(dataclasses.replace(transaction, operations=[op]))
            continue
        for index, key in enumerate(op.keys):
            single = dataclasses.replace(
                op,
                keys=[key],
                values=None if op.values is None else [op.values[index]],
                change_specs=None if op.change_specs is None else [op.spec_for(index)],
            )
            parts.append(dataclasses.replace(transaction, operations=[single]))
    return parts


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _key_in_use(table: str, key: str) -> InvalidOperation:
    return InvalidOperation(f"{table}: an object with key {key!r} already exists")


def _live(row: StoredObject | None) -> StoredObject | None:
    return row if row is not None and not row.deleted else None


T = TypeVar("T")


def _once(compute: Callable[[], T]) -> Callable[[], T]:
    """``compute``, run at the first call only. Made for every row written:
    ``functools.cache`` costs fifteen times as much to set up."""
    results: list[T] = []

    def once() -> T:
        if not results:
            results.append(compute())
        return results[0]

    return once
