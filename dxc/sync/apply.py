"""Applying the client transactions of one sync request to the store.

Each client transaction (one ``txid``) runs in a savepoint: it is applied
whole or not at all. A refused transaction is reported in ``rejections`` and
its keys are sent back with the server's state, which is how the client rolls
its local change back (it never reads ``rejections``). A transaction already
applied by an earlier, lost request of the same client is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dxc import tson
from dxc.access import REALMS_TABLE, RealmAccess
from dxc.protocol.changes import ChangeSpecError, apply_change_spec
from dxc.protocol.criteria import Criteria
from dxc.protocol.keys import decode_wire_key
from dxc.protocol.request import ClientTransaction, Operation
from dxc.storage.objects import ObjectStore, StoredObject
from dxc.storage.tables import TableInfo

#: Objects examined between two yields to the event loop.
YIELD_EVERY = 200


class Rejection(Exception):
    """The server refuses a client transaction; the message tells the client why."""

    name = "Rejected"


class PermissionDenied(Rejection):
    name = "PermissionDenied"


class InvalidOperation(Rejection):
    name = "InvalidOperation"


@dataclass
class ApplyResult:
    #: Keys whose server state goes back to the client, per table.
    touched: dict[str, set[str]] = field(default_factory=dict)
    rejections: list[dict[str, str]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)

    def touch(self, pairs: Iterable[tuple[str, str]]) -> None:
        for table, key in pairs:
            self.touched.setdefault(table, set()).add(key)


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
        self.tables = tables
        self.client_identity = client_identity
        self.rev = rev
        self.base_revision = base_revision
        self.user_id = access.principal.user_id
        self._rebase_cache: dict[tuple[str, int], list[tuple[str, Criteria, Any]]] = {}
        self.result = ApplyResult()

    def apply_all(self, transactions: list[ClientTransaction]) -> ApplyResult:
        done = self.store.applied_among(self.client_identity, [t.txid for t in transactions])
        for transaction in transactions:
            self.result.touch(transaction.named_keys)
            if transaction.txid in done:
                continue
            try:
                self._apply_transaction(transaction)
            except Rejection as rejection:
                self.result.rejections.append(
                    {"name": rejection.name, "message": str(rejection), "txid": transaction.txid}
                )
            else:
                self.result.applied.append(transaction.txid)
                done.add(transaction.txid)
        self.store.mark_applied(self.client_identity, self.result.applied, self.rev)
        return self.result

    def _apply_transaction(self, transaction: ClientTransaction) -> None:
        if transaction.error:
            raise InvalidOperation(transaction.error)
        if self.user_id is None:
            raise PermissionDenied("log in to push changes")
        self.access.forget()  # an earlier transaction may have created or dropped realms
        try:
            with self.store.connection.begin_nested():
                for operation in transaction.operations:
                    handler = getattr(self, f"_{operation.type}")
                    rows = list(handler(operation))
                    self.store.put_many(rows)
                    self.result.touch((row.tbl, row.key) for row in rows)
        except ChangeSpecError as error:
            raise InvalidOperation(str(error)) from None

    # --- operations ---------------------------------------------------------

    def _insert(self, op: Operation) -> Iterator[StoredObject]:
        return self._put(op)

    def _upsert(self, op: Operation) -> Iterator[StoredObject]:
        return self._put(op)

    def _put(self, op: Operation) -> Iterator[StoredObject]:
        existing = self.store.get_many(op.table, op.keys)
        for index, key in enumerate(op.keys):
            old = _live(existing.get(key))
            spec = op.spec_for(index) if op.change_specs is not None else None
            if old is not None and op.type == "upsert" and spec is not None:
                value = apply_change_spec(tson.loads(old.value), spec)
            elif old is not None and op.type == "insert":
                raise InvalidOperation(f"{op.table}: an object with key {key!r} already exists")
            else:
                value = self._rebased(op, key, dict(op.values[index]))
                if value is None:
                    continue  # deleted by a later consistent operation of another client
            yield self._row(op.table, key, old, value)

    def _update(self, op: Operation) -> Iterator[StoredObject]:
        existing = self.store.get_many(op.table, op.keys)
        for index, key in enumerate(op.keys):
            old = _live(existing.get(key))
            if old is None:
                continue  # updating a missing object does nothing, as in IndexedDB
            value = apply_change_spec(tson.loads(old.value), op.spec_for(index))
            yield self._row(op.table, key, old, value)

    def _modify(self, op: Operation) -> Iterator[StoredObject]:
        if op.is_additional_chunk:
            return  # the first chunk already ran the criteria over every object
        for old, value in self._targets(op):
            yield self._row(op.table, old.key, old, apply_change_spec(value, op.change_spec))
        self._record_consistent(op)

    def _delete(self, op: Operation) -> Iterator[StoredObject]:
        if op.criteria is not None and op.is_additional_chunk:
            return
        for old, _value in self._targets(op):
            yield StoredObject(op.table, old.key, old.realm_id, old.owner, self.rev, True, None)
        self._record_consistent(op)

    def _targets(self, op: Operation) -> Iterator[tuple[StoredObject, Any]]:
        """The objects an operation acts on, with their decoded values.

        Listed keys must all be writable (else the transaction is refused);
        criteria run over every readable object and silently skip the ones
        the principal may not change.
        """
        if op.criteria is None:
            for old in self.store.get_many(op.table, op.keys).values():
                if not old.deleted:
                    self._require_write(op.table, old)
                    yield old, tson.loads(old.value)
            return
        readable = self.access.readable_realms()
        matches = []
        for count, old in enumerate(self.store.live_objects(op.table, readable), 1):
            if count % YIELD_EVERY == 0:
                time.sleep(0)  # under gevent this lets other requests run
            value = tson.loads(old.value)
            if op.criteria.matches(value, decode_wire_key(old.key)) and self._may_write(
                op.table, old
            ):
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
            op.table, self.client_identity, self.rev, tson.dumps(operation)
        )

    # --- rebasing over consistent operations ------------------------------

    def _rebased(self, op: Operation, key: str, value: dict[str, Any]) -> dict[str, Any] | None:
        """Apply to a full write the where-clause operations it was made without.

        The client wrote ``value`` at its base revision; criteria operations
        that other clients committed since then still apply to it if it
        matches them (e.g. a folder rename reaching a file created offline).
        """
        base = self.base_revision(op)
        if base >= self.rev - 1:
            return value
        cache_key = (op.table, base)
        if cache_key not in self._rebase_cache:
            self._rebase_cache[cache_key] = [
                (o["type"], Criteria.from_wire(o["criteria"]), o.get("changeSpec"))
                for o in map(
                    tson.loads,
                    self.store.consistent_operations_after(op.table, base, self.client_identity),
                )
            ]
        primary_key = decode_wire_key(key)
        for kind, criteria, spec in self._rebase_cache[cache_key]:
            if not criteria.matches(value, primary_key):
                continue
            if kind == "delete":
                return None
            value = apply_change_spec(value, spec)
        return value

    # --- checks -----------------------------------------------------------

    def _row(
        self, table: str, key: str, old: StoredObject | None, value: Any
    ) -> StoredObject:
        """The row to store for ``value``, after checking the principal may write it."""
        if not isinstance(value, dict):
            raise InvalidOperation(f"{table}: {key!r} must be an object")
        value.setdefault("realmId", self.user_id)
        value.setdefault("owner", self.user_id)
        realm_id, owner = value["realmId"], value["owner"]
        if not isinstance(realm_id, str) or not realm_id:
            raise InvalidOperation(f"{table}: {key!r} has no valid realmId")
        if not isinstance(owner, str) or not owner:
            raise InvalidOperation(f"{table}: {key!r} has no valid owner")
        if table == REALMS_TABLE and realm_id != key:
            raise InvalidOperation(f"realms: the realmId of {key!r} must be its key")
        if old is None:
            self._check_new_key(table, key)
            if owner != self.user_id:
                raise PermissionDenied(f"{table}: cannot create objects owned by {owner!r}")
        else:
            self._require_write(table, old)
            if owner != old.owner and owner != self.user_id:
                raise PermissionDenied(f"{table}: cannot give {key!r} to {owner!r}")
        if table == REALMS_TABLE:
            if old is None and realm_id in (self.user_id, "rlm-public"):
                raise PermissionDenied(f"realms: {realm_id!r} is a reserved realm id")
        elif not self.access.can_write(realm_id):
            raise PermissionDenied(f"{table}: no write access to realm {realm_id!r}")
        if old is not None and old.realm_id != realm_id:
            self.store.record_departure(table, key, old.realm_id, self.rev)
        return StoredObject(table, key, realm_id, owner, self.rev, False, tson.dumps(value))

    def _may_write(self, table: str, old: StoredObject) -> bool:
        if table == REALMS_TABLE:
            return old.owner == self.user_id
        return self.access.can_write(old.realm_id)

    def _require_write(self, table: str, old: StoredObject) -> None:
        if not self._may_write(table, old):
            raise PermissionDenied(f"{table}: no write access to {old.key!r}")

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


def _live(row: StoredObject | None) -> StoredObject | None:
    return row if row is not None and not row.deleted else None
