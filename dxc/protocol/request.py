"""Reading a decoded ``/sync`` request into typed objects.

A request whose envelope is broken is refused as a whole (the client could
never fix it by resending). A broken *operation* only spoils its own client
transaction, which is then rejected inside a 200 answer: the client resends a
failed request forever, so one bad write must not block all the others. That
includes identifiers no database stores (:mod:`dxc.protocol.identifiers`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dxc import tson
from dxc.protocol import ProtocolError
from dxc.protocol.criteria import Criteria
from dxc.protocol.identifiers import (
    KEY_BYTES,
    TABLE_BYTES,
    TXID_BYTES,
    check_identifier,
    check_indexed_props,
    identifier_problem,
    indexed_props,
    plain_texts,
    plainly_storable,
    shown,
)
from dxc.protocol.schema import validate_schema
from dxc.protocol.ymessages import BadYMessage, YMessage, parse_sync_y
from dxc.tson import UNDEFINED

OPERATION_TYPES = ("insert", "upsert", "update", "modify", "delete")


@dataclass
class Operation:
    type: str
    table: str
    keys: list[str]
    values: list[Any] | None = None
    change_specs: list[Any] | None = None
    change_spec: dict[str, Any] | None = None
    criteria: Criteria | None = None
    criteria_wire: Any = None
    rev: int | None = None
    is_additional_chunk: bool = False

    def spec_for(self, index: int) -> Any:
        """``changeSpecs[i]``, or the single spec the client sends for N keys."""
        specs = self.change_specs or []
        return specs[index] if index < len(specs) else (specs[0] if specs else None)


@dataclass
class ClientTransaction:
    """The operations of one local read-write transaction (one ``txid``)."""

    txid: str
    operations: list[Operation] = field(default_factory=list)
    #: Set when an operation could not be read; the transaction is then rejected.
    error: str | None = None
    #: (table, key) pairs named by the transaction, readable or not, for rollback.
    named_keys: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class LastPull:
    server_revision: Any
    realms: tuple[str, ...]
    invite_realms: tuple[str, ...]
    y_server_revision: Any = None


@dataclass(frozen=True)
class BaseRevision:
    table: str
    client_rev: int
    server_rev: Any


@dataclass
class SyncRequest:
    version: int
    db_id: str | None
    client_identity: str
    schema: dict[str, dict[str, Any]]
    last_pull: LastPull | None
    base_revs: list[BaseRevision]
    transactions: list[ClientTransaction]
    #: The ``u-c`` messages of ``y``, and those refused as unreadable.
    y_updates: list[YMessage] = field(default_factory=list)
    y_refused: list[BadYMessage] = field(default_factory=list)


def parse_sync_request(body: Any) -> SyncRequest:
    """Turn a decoded TSON body into a :class:`SyncRequest`."""
    if not isinstance(body, dict):
        raise ProtocolError("the body must be an object")
    client_identity = check_identifier(body.get("clientIdentity"), "clientIdentity", TXID_BYTES)
    changes = _present(body.get("changes"), [])
    if not isinstance(changes, list):
        raise ProtocolError("changes must be an array")
    version = _present(body.get("v"), 1)
    if not isinstance(version, int):
        raise ProtocolError("v must be a number")
    db_id = _present(body.get("dbID"), None)
    y_updates, y_refused = parse_sync_y(body.get("y"))
    return SyncRequest(
        version=version,
        db_id=db_id if isinstance(db_id, str) else None,
        client_identity=client_identity,
        schema=validate_schema(_present(body.get("schema"), {})),
        last_pull=_last_pull(_present(body.get("lastPull"), None)),
        base_revs=_base_revs(_present(body.get("baseRevs"), [])),
        transactions=_transactions(changes),
        y_updates=y_updates,
        y_refused=y_refused,
    )


def _present(value: Any, default: Any) -> Any:
    return default if value is UNDEFINED or value is None else value


def _finite(value: Any) -> bool:
    """A JSON number that fits a double (``1e400`` parses as infinity)."""
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _string_list(value: Any, name: str) -> tuple[str, ...]:
    value = _present(value, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError(f"{name} must be an array of strings")
    return tuple(value)


def _last_pull(value: Any) -> LastPull | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError("lastPull must be an object")
    return LastPull(
        server_revision=value.get("serverRevision"),
        realms=_string_list(value.get("realms"), "lastPull.realms"),
        invite_realms=_string_list(value.get("inviteRealms"), "lastPull.inviteRealms"),
        y_server_revision=value.get("yServerRevision"),
    )


def _base_revs(value: Any) -> list[BaseRevision]:
    if not isinstance(value, list):
        raise ProtocolError("baseRevs must be an array")
    revs = []
    for entry in value:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("tableName"), str)
            and _finite(entry.get("clientRev"))
        ):
            raise ProtocolError("each baseRevs entry needs tableName and clientRev")
        revs.append(
            BaseRevision(entry["tableName"], int(entry["clientRev"]), entry.get("serverRev"))
        )
    return revs


def _transactions(changes: list[Any]) -> list[ClientTransaction]:
    """Group consecutive operations of one ``txid`` (across tables) into transactions."""
    transactions: list[ClientTransaction] = []
    for entry in changes:
        if not isinstance(entry, dict) or not isinstance(entry.get("muts"), list):
            raise ProtocolError("each changes entry must be {table, muts: [...]}")
        table = entry.get("table")
        for mutation in entry["muts"]:
            txid = mutation.get("txid") if isinstance(mutation, dict) else None
            if not isinstance(txid, str) or not txid:
                raise ProtocolError("every operation needs a txid")
            # A txid no column stores rejects its transaction, under an escaped
            # name that the store may look up and the answer may carry.
            problem = identifier_problem(txid, TXID_BYTES)
            txid = tson.safe_text(txid)
            if not transactions or transactions[-1].txid != txid:
                error = f"txid {shown(txid)} {problem}" if problem else None
                transactions.append(ClientTransaction(txid, error=error))
            transaction = transactions[-1]
            transaction.named_keys.extend(_named_keys(table, mutation))
            if transaction.error:
                continue
            try:
                transaction.operations.append(parse_operation(table, mutation))
            except ProtocolError as error:
                transaction.error = str(error)
    return transactions


def _named_keys(table: Any, mutation: dict[str, Any]) -> list[tuple[str, str]]:
    """The keys the store can look up (too long to store is fine, NUL is not), so
    that the client gets the server's state of them back."""
    keys = mutation.get("keys")
    if not isinstance(table, str) or tson.text_problem(table) or not isinstance(keys, list):
        return []
    if plain_texts(keys):
        return [(table, key) for key in keys]  # one scan for the lot, the usual case
    return [(table, key) for key in keys if isinstance(key, str) and not tson.text_problem(key)]


def parse_operation(table: Any, op: dict[str, Any]) -> Operation:
    """One DBOperation; :class:`ProtocolError` says what is wrong with it."""
    if not isinstance(table, str) or not table or table.startswith("$"):
        raise ProtocolError(f"cannot write to table {table!r}")
    kind = op.get("type")
    if kind not in OPERATION_TYPES:
        raise ProtocolError(f"unknown operation type {kind!r}")
    keys = op.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise ProtocolError(f"{kind}: keys must be an array of non-empty strings")
    rev = _present(op.get("rev"), None)
    if isinstance(rev, int | float) and not _finite(rev):
        raise ProtocolError(f"{kind}: rev must be a finite number")
    operation = Operation(
        type=kind,
        table=table,
        keys=keys,
        rev=int(rev) if isinstance(rev, int | float) else None,
        is_additional_chunk=op.get("isAdditionalChunk") is True,
    )
    if kind in ("insert", "upsert"):
        values = op.get("values")
        if not isinstance(values, list) or len(values) != len(keys):
            raise ProtocolError(f"{kind}: values must be an array as long as keys")
        if not all(isinstance(v, dict) for v in values):
            raise ProtocolError(f"{kind}: every value must be an object")
        operation.values = values
        specs = _present(op.get("changeSpecs"), None)
        if specs is not None:
            operation.change_specs = _specs(specs, kind, allow_null=True)
    elif kind == "update":
        operation.change_specs = _specs(op.get("changeSpecs"), kind, allow_null=False)
        if not operation.change_specs:
            raise ProtocolError("update: changeSpecs must not be empty")
    else:
        criteria = _present(op.get("criteria"), None)
        if criteria is not None:
            try:
                operation.criteria = Criteria.from_wire(criteria)
            except ValueError as error:
                raise ProtocolError(f"{kind}: bad criteria: {error}") from None
            operation.criteria_wire = criteria
        if kind == "modify":
            spec = op.get("changeSpec")
            if not isinstance(spec, dict):
                raise ProtocolError("modify: changeSpec must be an object")
            operation.change_spec = spec
    return check_operation(operation)


def check_operation(operation: Operation) -> Operation:
    """``operation`` if every identifier it stores fits a column and an index;
    else :class:`ProtocolError` saying which does not (also for the REST API's
    operations, which are not parsed from a request)."""
    table = check_identifier(operation.table, "table", TABLE_BYTES)
    if plainly_storable(_identifiers(operation), KEY_BYTES):
        return operation
    for key in operation.keys:
        check_identifier(key, f"{operation.type}: key", KEY_BYTES)
    for value in (*(operation.values or ()), *(operation.change_specs or ())):
        if value is not None:
            check_indexed_props(table, value)
    if operation.change_spec is not None:
        check_indexed_props(table, operation.change_spec)
    return operation


def _identifiers(operation: Operation) -> list[Any]:
    """The keys of ``operation`` and the indexed properties of its values, which
    :func:`check_operation` checks (a property that is not a string, a list or a
    PropModification, makes the list one that is not plainly storable)."""
    texts: list[Any] = list(operation.keys)
    names = indexed_props(operation.table)
    specs = operation.change_specs or ()
    for value in (*(operation.values or ()), *specs, operation.change_spec):
        if value is not None:
            texts.extend(value[name] for name in names if name in value)
    return texts


def _specs(specs: Any, kind: str, allow_null: bool) -> list[Any]:
    if not isinstance(specs, list) or not all(
        isinstance(s, dict) or (allow_null and s in (None, UNDEFINED)) for s in specs
    ):
        raise ProtocolError(f"{kind}: changeSpecs must be an array of objects")
    return [None if s is UNDEFINED else s for s in specs]
