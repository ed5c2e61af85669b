"""The REST data API: objects read and written over plain HTTP (``/all``, ``/my``, ``/public``).

Three views of the same objects:

* ``all``: every object (GLOBAL_READ; writes need GLOBAL_WRITE and pass the
  permission rules, not the structural ones);
* ``my``: what the token's subject sees in a sync (its realm set), written
  under exactly the sync rules, as the subject with no global scope;
* ``public``: the objects of ``rlm-public``; writes need GLOBAL_WRITE.

Writes are client transactions of the server's making, applied by the sync
code itself (:class:`dxc.sync.apply.TransactionApplier`): the same checks,
the same access index, a new revision, and a notice on the bus so that
connected clients pull them. A refused write stores nothing.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dxc import tson
from dxc.access import PUBLIC_REALM, Principal, RealmAccess
from dxc.access.rejections import PermissionDenied, Rejection
from dxc.bus.commits import committing
from dxc.cooperative import taking_turns
from dxc.errors import Forbidden, Invalid, NotFound, Refused
from dxc.protocol.keys import decode_wire_key, encode_wire_key, js_number_to_string
from dxc.protocol.request import ClientTransaction, Operation, check_operation
from dxc.services import Services
from dxc.storage import tables as table_store
from dxc.storage.objects import ObjectStore, StoredObject
from dxc.storage.router import Shard
from dxc.storage.tables import TableInfo
from dxc.sync.apply import ApplyResult, TransactionApplier

ALL, MY, PUBLIC = "all", "my", "public"
#: The ``clientIdentity`` REST writes are made under.
REST_CLIENT = "rest-api"


@dataclass(frozen=True)
class View:
    """Which objects a request sees (``kind``) and who writes (``principal``)."""

    kind: str
    principal: Principal


@dataclass(frozen=True)
class _Sight:
    """The objects a view shows: rows of ``realms`` (None: all) and invitation rows."""

    realms: frozenset[str] | None
    invites: frozenset[str] = frozenset()
    invited: frozenset[tuple[str, str]] = frozenset()

    def shows(self, row: StoredObject) -> bool:
        return (
            self.realms is None or row.realm_id in self.realms or (row.tbl, row.key) in self.invited
        )

    def query_realms(self, wanted: str | None) -> list[str] | None:
        """The realms to read (None: every realm) for the ``realmId`` filter ``wanted``."""
        if self.realms is None:
            return None if wanted is None else [wanted]
        readable = self.realms | self.invites
        return sorted(readable) if wanted is None else [r for r in [wanted] if r in readable]


class DataApi:
    def __init__(self, services: Services) -> None:
        self.services = services

    # --- reading ------------------------------------------------------------

    def list_objects(
        self, db_id: str, view: View, table: str, query: Mapping[str, str]
    ) -> Iterator[str]:
        """The JSON text pieces of the array of the objects of ``table`` the view
        shows, filtered by ``realmId`` and property equality (see :func:`matches`)."""
        shard = self.services.router.shard_for(db_id)  # an unknown database fails here
        filters = dict(query)
        realm_id = filters.pop("realmId", None)
        pieces = self._stream(shard, db_id, view, table, realm_id, filters)
        # Run to the first piece now: the connection and the realm set are taken
        # before the status goes out, so an outage is a 503, not a cut stream.
        return itertools.chain([next(pieces)], pieces)

    def _stream(
        self,
        shard: Shard,
        db_id: str,
        view: View,
        table: str,
        realm_id: str | None,
        filters: dict[str, str],
    ) -> Iterator[str]:
        with shard.transaction(read_only=True) as connection:
            store = ObjectStore(connection, db_id)
            sight = _sight(RealmAccess(store, view.principal), view)
            realms = sight.query_realms(realm_id)
            yield "["
            first = True
            rows = store.listing(table, realms) if realms != [] else iter(())
            for row in taking_turns(rows):
                text = row.value or "{}"
                if not sight.shows(row) or (filters and not matches(tson.loads(text), filters)):
                    continue
                yield text if first else "," + text
                first = False
            yield "]"

    def get_object(self, db_id: str, view: View, table: str, pk: str) -> str:
        """The object ``pk`` of ``table`` as TSON text, if the view shows it."""
        key = url_key(pk)
        with self.services.router.shard_for(db_id).transaction(read_only=True) as connection:
            store = ObjectStore(connection, db_id)
            row = store.get_many(table, [key]).get(key)
            sight = _sight(RealmAccess(store, view.principal), view)
            if row is None or row.deleted or not sight.shows(row):
                raise NotFound(f"{table}: there is no object {pk!r}")
            return row.value or "{}"

    # --- writing ------------------------------------------------------------

    def put_objects(self, db_id: str, view: View, table: str, body: Any) -> str:
        """Create or replace the object(s) of ``body``; the stored objects as TSON
        text (an array for an array, an object for an object)."""
        single = isinstance(body, dict)
        values = [body] if single else body
        if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
            raise Invalid("the body must be an object or an array of objects")
        shard = self.services.router.shard_for(db_id)
        with self.services.control.connect() as connection:
            tables = table_store.get_tables(connection, db_id)
        info = tables.get(table)
        if info is None:
            raise NotFound(f"Table '{table}' was not found in database '{db_id}'")
        values = [dict(value) for value in values]
        for value in values:
            if view.kind == PUBLIC:
                value["realmId"] = PUBLIC_REALM
            elif view.kind == ALL and not (
                value.get("realmId") and isinstance(value["realmId"], str)
            ):
                raise Invalid(f"{table}: every object needs a realmId")
        keys = [_primary_key(info, value, view.principal) for value in values]
        if not keys:
            return "[]"  # an empty array
        # Checked before any lookup: a key no column stores fails in the first statement.
        operation = check_operation(Operation("upsert", table, keys, values=values))
        with committing(shard, db_id, self.services.bus) as write:
            store, rev = write.store, write.rev
            access = RealmAccess(store, view.principal)
            if view.kind != MY:
                existing = store.get_many(table, keys)
                for key, value in zip(keys, values, strict=True):
                    if key not in existing or existing[key].deleted:
                        _default_owner(access, value)
            result = self._apply(store, access, tables, rev, operation)
            stored = store.get_many(table, keys)
            texts = [stored[key].value or "{}" for key in keys]
        self._invite(db_id, result)
        return texts[0] if single else "[" + ",".join(texts) + "]"

    def delete_object(self, db_id: str, view: View, table: str, pk: str) -> None:
        """Delete object ``pk`` of ``table`` if the view shows it and the rules allow."""
        key = url_key(pk)
        shard = self.services.router.shard_for(db_id)
        with self.services.control.connect() as connection:
            tables = table_store.get_tables(connection, db_id)
        with committing(shard, db_id, self.services.bus) as write:
            access = RealmAccess(write.store, view.principal)
            row = write.store.get_many(table, [key]).get(key)
            if row is None or row.deleted or not _sight(access, view).shows(row):
                raise NotFound(f"{table}: there is no object {pk!r}")
            operation = Operation("delete", table, [key])
            result = self._apply(write.store, access, tables, write.rev, operation)
        self._invite(db_id, result)

    def _apply(
        self,
        store: ObjectStore,
        access: RealmAccess,
        tables: dict[str, TableInfo],
        rev: int,
        operation: Operation,
    ) -> ApplyResult:
        """Apply ``operation`` as sync would; raise (rolling everything back) if refused."""
        applier = TransactionApplier(store, access, tables, REST_CLIENT, rev, lambda _op: rev)
        transaction = ClientTransaction(
            f"rest-{secrets.token_hex(8)}",
            operations=[operation],
            named_keys=[(operation.table, key) for key in operation.keys],
        )
        rejection = applier.apply_one(transaction)
        if rejection is not None:
            raise _refusal(rejection)
        return applier.result

    def _invite(self, db_id: str, result: ApplyResult) -> None:
        """Mail the invitations of a committed write."""
        send_invites = self.services.sync.send_invites
        if result.invitations and send_invites is not None:
            send_invites(db_id, result.invitations)


def _sight(access: RealmAccess, view: View) -> _Sight:
    if view.kind == ALL:
        return _Sight(None)
    if view.kind == PUBLIC:
        return _Sight(frozenset({PUBLIC_REALM}))
    realm_set = access.realm_set()
    return _Sight(
        frozenset(realm_set.realms),
        frozenset(realm_set.invites),
        access.invitation_rows(realm_set.invites),
    )


def _refusal(rejection: Rejection) -> Refused:
    if isinstance(rejection, PermissionDenied):
        return Forbidden(str(rejection))
    return Invalid(str(rejection))


def url_key(text: str) -> str:
    """The wire key for a primary key from a URL: a JSON array is a compound
    key (re-encoded as the client encodes it), anything else a string key."""
    key = decode_wire_key(text)
    if not isinstance(key, list):
        return text
    try:
        return encode_wire_key(key)
    except ValueError as error:
        raise Invalid(f"not a valid compound key: {error}") from None


def _primary_key(info: TableInfo, value: dict[str, Any], principal: Principal) -> str:
    """The wire key of ``value``, taken from the table's key path (``id`` when
    unknown); generated (and set) for ``@`` tables without one."""
    props = info.key_props if info.key_props is not None else ["id"]
    if not props:
        raise Invalid(f"{info.name}: the table has no key path; objects cannot be written here")
    if info.compound:
        missing = [prop for prop in props if _at(value, prop) is None]
        if missing:
            raise Invalid(
                f"{info.name}: every object needs its key properties {', '.join(props)}"
            )
        try:
            return encode_wire_key([_at(value, prop) for prop in props])
        except ValueError as error:
            raise Invalid(f"{info.name}: not a valid compound key: {error}") from None
    path = props[0]
    key = _at(value, path)
    if key is None:
        if not info.generated_global_id or "." in path:
            raise Invalid(f"{info.name}: every object needs its primary key {path!r}")
        colocated = value.get("realmId") or principal.user_id or ""
        key = value[path] = generate_key(info.id_prefix or "", str(colocated))
    if not isinstance(key, str) or not key:
        raise Invalid(f"{info.name}: the primary key {path!r} must be a non-empty string")
    return key


def _at(value: dict[str, Any], path: str) -> Any:
    """The property at key path ``path`` (``a.b`` is nested), None if absent."""
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


_last_millis = 0
_millis_lock = threading.Lock()


def generate_key(prefix: str, colocated: str) -> str:
    """A new ``@`` key as the client makes one: the table's prefix, 6 bytes of
    milliseconds and 12 random bytes in b64lex, and the last 3 characters of
    the realm it is created in. Keys made in the same millisecond count the
    milliseconds on, as the client does, so that keys sort by creation."""
    global _last_millis
    with _millis_lock:
        _last_millis = max(int(time.time() * 1000), _last_millis + 1)
        millis = _last_millis.to_bytes(6, "big")
    return prefix + tson.b64lex_encode(millis + secrets.token_bytes(12)) + colocated[-3:]


def _default_owner(access: RealmAccess, value: dict[str, Any]) -> None:
    """A new object written with a global scope and no ``owner`` belongs to its
    realm's owner: the user of a private realm, the owner of a shared realm
    (for ``rlm-public`` and owner-less realms the sync default, the caller)."""
    if value.get("owner"):
        return
    realm_id = value.get("realmId")
    if not isinstance(realm_id, str) or realm_id == PUBLIC_REALM:
        return
    if not realm_id.startswith("rlm"):
        value["owner"] = realm_id
    elif (realm := access.realm(realm_id)) is not None and realm.owner:
        value["owner"] = realm.owner


def matches(value: Any, filters: Mapping[str, str]) -> bool:
    """Whether every ``path=text`` of ``filters`` holds for ``value``.

    Query values are text, so the property is compared as text: a string as
    it is, ``true``/``false``/``null``, a number as JavaScript prints it
    (``42``, ``1.5``), a date as its ISO text, anything else as its JSON
    (TSON) text. ``a.b`` names a nested property.
    """
    for path, expected in filters.items():
        found = value
        for part in path.split("."):
            if not isinstance(found, dict) or part not in found:
                return False
            found = found[part]
        if _as_text(found) != expected:
            return False
    return True


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is True or value is False or value is None:
        return "true" if value else ("null" if value is None else "false")
    if isinstance(value, int | float):
        return js_number_to_string(value)
    if isinstance(value, tson.Date):
        return value.iso
    return tson.dumps(value)
