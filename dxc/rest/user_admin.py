"""Administering the users of a database: ``/<db>/users`` (``docs/rest-api.md``).

Users are answered as ``DBUserJsonModel``. The control database keeps a
user's id, type, e-mail, name, creation, last login, last change
(``updated``), ``validUntil``, ``evalDaysLeft``, ``deactivated`` and the
custom ``data`` beyond ``displayName`` and ``email``. A deactivated user (a
soft delete) gets no more tokens; an active user is neither deactivated nor
past ``validUntil``.

Deleting a user erases them: their account, refresh tokens and private
data (see :func:`erase_user`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dxc import tson
from dxc.access import REALMS_TABLE, Principal, RealmAccess
from dxc.access import members as member_rules
from dxc.access.index import store_objects
from dxc.access.permissions import ALL
from dxc.access.principal import normalise_email
from dxc.bus.commits import committing
from dxc.errors import Invalid, NotFound
from dxc.services import Services
from dxc.storage import users as user_store
from dxc.storage.access_index import AccessIndex
from dxc.storage.clock import as_utc, utcnow
from dxc.storage.objects import ObjectStore, StoredObject

USER_TYPES = ("eval", "prod", "demo")
MAX_LIMIT = 1000
#: Properties ``POST /users`` knows; ``data`` holds ``displayName``, ``email`` and custom data.
USER_PROPS = frozenset({"userId", "type", "validUntil", "evalDaysLeft", "deactivated", "data"})
#: The longest evaluation this server grants (``maxAllowedEvalDaysLeft``).
MAX_EVAL_DAYS = 30
#: The most custom ``data`` a user may carry, as JSON text.
MAX_DATA_CHARS = 64 * 1024


def user_json(user: user_store.User) -> dict[str, Any]:
    """``DBUserJsonModel`` of ``user`` (dates as ISO text, custom data TSON-encoded)."""
    data = json.loads(user.data) if user.data else {}
    if user.name:
        data["displayName"] = user.name
    if user.email:
        data["email"] = user.email
    model: dict[str, Any] = {
        "userId": user.user_id,
        "created": _iso(user.created),
        "updated": _iso(user.updated),
        "type": user.user_type,
        "maxAllowedEvalDaysLeft": MAX_EVAL_DAYS,
        "data": data,
    }
    if user.last_login:
        model["lastLogin"] = _iso(user.last_login)
    if user.valid_until:
        model["validUntil"] = _iso(user.valid_until)
    if user.eval_days_left is not None:
        model["evalDaysLeft"] = user.eval_days_left
    if user.deactivated:
        model["deactivated"] = _iso(user.deactivated)
    return model


def _iso(moment: datetime) -> str:
    return as_utc(moment).astimezone(UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


# --- reading ------------------------------------------------------------------


def list_users(services: Services, db_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    """``{data, hasMore, pagingKey?}`` for the query of ``GET /users``."""
    sort = query.get("sort", "userId")
    if sort not in user_store.SORT_KEYS:
        raise Invalid(f"sort must be one of {', '.join(user_store.SORT_KEYS)}")
    desc = _flag(query, "desc", False)
    active = _flag(query, "active", None)
    user_type = query.get("type") or None
    if user_type is not None and user_type not in USER_TYPES:
        raise Invalid(f"type must be one of {', '.join(USER_TYPES)}")
    limit = _limit(query.get("limit"))
    after = _paging_key(query["pagingKey"], sort) if query.get("pagingKey") else None
    services.router.shard_for(db_id)  # an unknown database is a 404
    with services.control.connect() as connection:
        found = user_store.list_users(
            connection,
            db_id,
            search=query.get("search") or None,
            user_type=user_type,
            active=active,
            sort=sort,
            desc=desc,
            after=after,
            limit=limit + 1,
        )
    page = found[:limit]
    answer: dict[str, Any] = {"data": [user_json(u) for u in page], "hasMore": len(found) > limit}
    if answer["hasMore"]:
        answer["pagingKey"] = _make_paging_key(page[-1], sort)
    return answer


def get_user(services: Services, db_id: str, user_id: str) -> dict[str, Any]:
    services.router.shard_for(db_id)
    with services.control.connect() as connection:
        user = user_store.get_user(connection, db_id, user_id)
    if user is None:
        raise NotFound(f"there is no user {user_id!r}")
    return user_json(user)


def _flag(query: Mapping[str, str], name: str, default: bool | None) -> bool | None:
    value = query.get(name)
    if value is None or value == "":
        return default
    if value not in ("true", "false"):
        raise Invalid(f"{name} must be true or false")
    return value == "true"


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return MAX_LIMIT
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= MAX_LIMIT:
        raise Invalid(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(value)


def _make_paging_key(user: user_store.User, sort: str) -> str:
    value = user_store.sort_value(user, sort)
    if isinstance(value, datetime):  # to the microsecond, as stored
        value = as_utc(value).isoformat()
    text = json.dumps([sort, value, user.user_id])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _paging_key(key: str, sort: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
        key_sort, value, user_id = json.loads(raw)
        tson.check_plain([value, user_id])  # forged: a NUL or 1e30 must not reach a statement
        if key_sort != sort or not isinstance(user_id, str):
            raise ValueError("another sort order")
        if sort in user_store.TIME_SORT_KEYS:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, TypeError, AttributeError, binascii.Error):
        raise Invalid("pagingKey is not one this query returned") from None
    return value, user_id


# --- creating and updating ----------------------------------------------------


@dataclass
class _UserChange:
    """One entry of ``POST /users``: columns to set, custom data to merge."""

    user_id: str
    columns: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)  # TSON-encoded; None: remove
    deactivate: bool = False  # deactivated: true (keeps an earlier deactivation time)

    def apply(self, connection: Any, db_id: str) -> None:
        """Create or update the user in the control database."""
        user = user_store.get_user(connection, db_id, self.user_id)
        columns = dict(self.columns)
        if self.deactivate and (user is None or user.deactivated is None):
            columns["deactivated"] = utcnow()
        data = _merged_data(user.data if user else None, self.custom, self.user_id)
        if self.custom:
            columns["data"] = data
        if user is None:
            if "user_type" not in columns:
                raise Invalid(f"user {self.user_id!r} does not exist: type is required")
            user_store.create_user(connection, db_id, self.user_id, **columns)
        else:
            user_store.update_user(connection, db_id, self.user_id, **columns)


def save_users(services: Services, db_id: str, body: Any) -> Any:
    """Create or update the users of ``body`` (an array, or one user) all or none;
    the users as stored (an array for an array)."""
    single = isinstance(body, dict)
    entries = [body] if single else body
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise Invalid("the body must be a user object or an array of them")
    changes = [_parse_user(entry, index) for index, entry in enumerate(entries)]
    ids = [change.user_id for change in changes]
    if len(set(ids)) != len(ids):
        raise Invalid("a user may appear only once per request")
    services.router.shard_for(db_id)
    with services.control.begin() as connection:
        for change in changes:
            change.apply(connection, db_id)
        saved = [user_store.get_user(connection, db_id, user_id) for user_id in ids]
    answer = [user_json(user) for user in saved if user is not None]
    return answer[0] if single else answer


def _parse_user(entry: dict[str, Any], index: int) -> _UserChange:
    where = f"users[{index}]"
    unknown = sorted(set(entry) - USER_PROPS)
    if unknown:
        raise Invalid(f"{where}: unknown properties: {', '.join(unknown)}")
    user_id = entry.get("userId")
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > 320:
        raise Invalid(f"{where}: userId must be a non-empty string of at most 320 characters")
    change = _UserChange(user_id)
    if "type" in entry:
        if entry["type"] not in USER_TYPES:
            raise Invalid(f"{where}: type must be one of {', '.join(USER_TYPES)}")
        change.columns["user_type"] = entry["type"]
    if "validUntil" in entry:
        change.columns["valid_until"] = _moment(entry["validUntil"], f"{where}: validUntil")
    if "evalDaysLeft" in entry:
        days = entry["evalDaysLeft"]
        if days is not None and (
            not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_EVAL_DAYS
        ):
            raise Invalid(
                f"{where}: evalDaysLeft must be a whole number from 0 to {MAX_EVAL_DAYS} or null"
            )
        change.columns["eval_days_left"] = days
    if "deactivated" in entry:
        deactivated = entry["deactivated"]
        if deactivated is True:
            change.deactivate = True
        elif deactivated is False or deactivated is None:
            change.columns["deactivated"] = None
        else:
            change.columns["deactivated"] = _moment(deactivated, f"{where}: deactivated")
    data = entry.get("data")
    if data is not None:
        if not isinstance(data, dict):
            raise Invalid(f"{where}: data must be an object")
        _parse_data(change, data, where)
    return change


def _parse_data(change: _UserChange, data: dict[str, Any], where: str) -> None:
    """``displayName`` and ``email`` go to their columns, the rest to custom data."""
    for prop, column in (("displayName", "name"), ("email", "email")):
        if prop in data:
            value = data[prop]
            if value is not None and (not isinstance(value, str) or len(value) > 320):
                raise Invalid(f"{where}: data.{prop} must be a string (at most 320)")
            change.columns[column] = value
    if change.columns.get("email") is not None:
        email = normalise_email(change.columns["email"])
        if email is None or "@" not in email:
            raise Invalid(f"{where}: data.email is not an e-mail address")
        change.columns["email"] = email
    for name, value in data.items():
        if name not in ("displayName", "email"):
            change.custom[name] = None if value is None else tson.encode(value)


def _merged_data(stored: str | None, custom: dict[str, Any], user_id: str) -> str | None:
    """The custom data text after merging ``custom`` (None values remove) into ``stored``."""
    data = json.loads(stored) if stored else {}
    data.update(custom)
    data = {name: value for name, value in data.items() if value is not None}
    text = json.dumps(data, separators=(",", ":")) if data else None
    if text is not None and len(text) > MAX_DATA_CHARS:
        raise Invalid(f"user {user_id!r}: data is larger than {MAX_DATA_CHARS} characters")
    return text


def _moment(value: Any, what: str) -> datetime | None:
    """A time given as ISO text, epoch milliseconds or a TSON date; None stays None."""
    if value is None:
        return None
    try:
        if isinstance(value, tson.Date):
            value = value.iso
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1000, UTC)
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise Invalid(f"{what} must be an ISO date-time, epoch milliseconds or null")


# --- deleting -----------------------------------------------------------------


def erase_user(services: Services, db_id: str, user_id: str) -> dict[str, Any]:
    """Erase user ``user_id``: account, refresh tokens and private data.

    * every object of their private realm is deleted;
    * their member rows are deleted (they leave every realm);
    * a realm they own that nobody else is a member of is deleted with all
      its objects; a realm they own that others share stays, without an
      owner, and if none of its active members has full control (``manage:
      '*'``) every active member gets it. Objects they own in shared realms
      stay where they are.

    It is one revision, published like a sync, so devices drop the data on
    their next pull.
    """
    shard = services.router.shard_for(db_id)
    with services.control.connect() as connection:
        if user_store.get_user(connection, db_id, user_id) is None:
            raise NotFound(f"there is no user {user_id!r}")
    with committing(shard, db_id, services.bus) as write:
        erasure = _Erasure(write.store, user_id, write.rev)
        rows = erasure.rows()
        store_objects(write.store, rows)
    with services.control.begin() as connection:
        user_store.delete_user(connection, db_id, user_id)
    return {
        "userId": user_id,
        "deletedObjects": sum(1 for row in rows if row.deleted),
        "deletedRealms": erasure.deleted_realms,
        "releasedRealms": erasure.released_realms,
    }


class _Erasure:
    """The rows that erase one user's data, computed on one shard connection."""

    def __init__(self, store: ObjectStore, user_id: str, rev: int) -> None:
        self.store = store
        self.user_id = user_id
        self.rev = rev
        self.index = AccessIndex(store.connection, store.db_id)
        self.deleted_realms: list[str] = []
        self.released_realms: list[str] = []

    def rows(self) -> list[StoredObject]:
        rows = self._realm_contents(self.user_id)
        memberships, owned = self.index.standing(self.user_id, None)
        for realm_id in sorted(owned):
            others = [m for m in self.index.members_of([realm_id]) if m.user_id != self.user_id]
            if others:
                rows.extend(self._release(realm_id, others))
                self.released_realms.append(realm_id)
            else:
                rows.extend(self._realm_contents(realm_id))
                self.deleted_realms.append(realm_id)
        own = [m.member_id for m in memberships]
        rows.extend(row.tombstone(self.rev) for row in self._live(member_rules.MEMBERS_TABLE, own))
        return list({(row.tbl, row.key): row for row in rows}.values())  # the last write wins

    def _realm_contents(self, realm_id: str) -> list[StoredObject]:
        return [row.tombstone(self.rev) for row in self.store.snapshot([realm_id], self.rev)]

    def _release(self, realm_id: str, others: list[Any]) -> list[StoredObject]:
        """The realm row without owner, and full control for its members if nobody has it."""
        rows = []
        for realm in self._live(REALMS_TABLE, [realm_id]):
            value = tson.loads(realm.value or "{}")
            value.pop("owner", None)
            rows.append(self._rewrite(realm, value, owner=None))
        active = [m for m in others if m.state == member_rules.ACTIVE and m.user_id]
        if any(self._has_full_control(m.user_id, realm_id) for m in active):
            return rows
        for member in self._live(member_rules.MEMBERS_TABLE, [m.member_id for m in active]):
            value = tson.loads(member.value or "{}")
            value["permissions"] = {"manage": ALL}
            rows.append(self._rewrite(member, value, owner=member.owner))
        return rows

    def _has_full_control(self, user_id: str, realm_id: str) -> bool:
        access = RealmAccess(self.store, Principal(user_id))
        return access.permissions(realm_id).manage == ALL

    def _live(self, table: str, keys: list[str]) -> list[StoredObject]:
        return [row for row in self.store.get_many(table, keys).values() if not row.deleted]

    def _rewrite(self, row: StoredObject, value: Any, owner: str | None) -> StoredObject:
        return StoredObject(
            row.tbl, row.key, row.realm_id, owner, self.rev, False, tson.dumps(value)
        )
