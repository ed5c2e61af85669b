"""User records of a logical database (control database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from dxc.storage import schema
from dxc.storage.clock import as_utc, utcnow


@dataclass(frozen=True)
class User:
    db_id: str
    user_id: str
    email: str | None
    name: str | None
    user_type: str
    is_demo: bool
    created: datetime
    last_login: datetime | None
    updated: datetime
    valid_until: datetime | None
    eval_days_left: int | None
    deactivated: datetime | None
    data: str | None  # custom data: TSON-encoded JSON text of an object


def get_user(connection: Connection, db_id: str, user_id: str) -> User | None:
    row = connection.execute(
        select(schema.users).where(
            schema.users.c.db_id == db_id, schema.users.c.user_id == user_id
        )
    ).one_or_none()
    return User(**row._mapping) if row else None


#: Built once: it runs on every request with a token.
_DEACTIVATED = select(schema.users.c.deactivated).where(
    schema.users.c.db_id == bindparam("db_id"), schema.users.c.user_id == bindparam("user_id")
)


def is_deactivated(connection: Connection, db_id: str, user_id: str) -> bool:
    """Whether ``user_id`` exists and is deactivated (a primary-key lookup)."""
    deactivated = connection.scalar(_DEACTIVATED, {"db_id": db_id, "user_id": user_id})
    return deactivated is not None


def add_demo_user(connection: Connection, db_id: str, email: str) -> None:
    """Create demo user ``email`` unless it exists (import is additive)."""
    email = email.strip().lower()
    if get_user(connection, db_id, email) is None:
        connection.execute(
            insert(schema.users).values(
                db_id=db_id,
                user_id=email,
                email=email,
                name=email.split("@", 1)[0],
                user_type="demo",
                is_demo=True,
                **_created_now(),
            )
        )


def ensure_user(
    connection: Connection,
    db_id: str,
    user_id: str,
    email: str | None,
    name: str | None,
    user_type: str,
) -> User:
    """The user ``user_id``, created with these details on their first login."""
    user = get_user(connection, db_id, user_id)
    if user is None:
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(schema.users).values(
                        db_id=db_id,
                        user_id=user_id,
                        email=email,
                        name=name,
                        user_type=user_type,
                        is_demo=False,
                        **_created_now(),
                    )
                )
        except IntegrityError:
            pass  # a concurrent first login created it
        user = get_user(connection, db_id, user_id)
        assert user is not None
    return user


def remove_demo_user(connection: Connection, db_id: str, email: str) -> None:
    connection.execute(
        delete(schema.users).where(
            schema.users.c.db_id == db_id,
            schema.users.c.user_id == email.strip().lower(),
            schema.users.c.is_demo.is_(True),
        )
    )


def record_login(connection: Connection, db_id: str, user_id: str) -> None:
    now = utcnow()
    connection.execute(
        update(schema.users)
        .where(schema.users.c.db_id == db_id, schema.users.c.user_id == user_id)
        .values(last_login=now, updated=now)
    )


def _created_now() -> dict[str, datetime]:
    """``created`` and ``updated`` of a new row: both now."""
    now = utcnow()
    return {"created": now, "updated": now}


# --- administration (``/<db>/users``) -------------------------------------------

_users = schema.users
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)
_FOREVER = datetime(9999, 12, 31, tzinfo=UTC)
_TIME = DateTime(timezone=True)
#: Sort keys of ``GET /users`` and the column each sorts by (None: every user
#: ties, ordered by id). No last login sorts first, no ``validUntil`` (never
#: expires) last, no ``evalDaysLeft`` first.
SORT_KEYS: dict[str, ColumnElement[Any] | None] = {
    "userId": None,
    "created": _users.c.created,
    "updated": _users.c.updated,
    "lastLogin": func.coalesce(_users.c.last_login, literal(_NEVER, _TIME)),
    "type": _users.c.user_type,
    "displayName": func.coalesce(_users.c.name, ""),
    "validUntil": func.coalesce(_users.c.valid_until, literal(_FOREVER, _TIME)),
    "evalDaysLeft": func.coalesce(_users.c.eval_days_left, -1),
}
#: Sort keys whose values are times (paging keys carry them as ISO text).
TIME_SORT_KEYS = frozenset({"created", "updated", "lastLogin", "validUntil"})


def sort_value(user: User, sort: str) -> Any:
    """The value ``user`` has for sort key ``sort``, as :data:`SORT_KEYS` compares it."""
    return {
        "created": user.created,
        "updated": user.updated,
        "lastLogin": user.last_login or _NEVER,
        "type": user.user_type,
        "displayName": user.name or "",
        "validUntil": user.valid_until or _FOREVER,
        "evalDaysLeft": -1 if user.eval_days_left is None else user.eval_days_left,
    }.get(sort)


def is_active(user: User, now: datetime) -> bool:
    """Neither deactivated nor past ``validUntil``."""
    return user.deactivated is None and (
        user.valid_until is None or as_utc(user.valid_until) > now
    )


def list_users(
    connection: Connection,
    db_id: str,
    *,
    search: str | None = None,
    user_type: str | None = None,
    active: bool | None = None,
    sort: str = "userId",
    desc: bool = False,
    after: tuple[Any, str] | None = None,
    limit: int = 1000,
) -> list[User]:
    """Up to ``limit`` users in ``sort`` order (ties by user id), after the
    (sort value, user id) ``after`` of a previous page."""
    column = SORT_KEYS[sort]
    query = select(_users).where(_users.c.db_id == db_id)
    if search:
        needle = search.lower()
        query = query.where(
            or_(
                *(
                    func.lower(func.coalesce(c, "")).contains(needle, autoescape=True)
                    for c in (_users.c.user_id, _users.c.email, _users.c.name)
                )
            )
        )
    if user_type:
        query = query.where(_users.c.user_type == user_type)
    if active is not None:
        live = and_(
            _users.c.deactivated.is_(None),
            or_(_users.c.valid_until.is_(None), _users.c.valid_until > utcnow()),
        )
        query = query.where(live if active else not_(live))
    if after is not None:
        value, user_id = after
        later = (lambda a, b: a < b) if desc else (lambda a, b: a > b)
        if column is None:
            query = query.where(later(_users.c.user_id, user_id))
        else:
            query = query.where(
                or_(
                    later(column, value),
                    and_(column == value, later(_users.c.user_id, user_id)),
                )
            )
    order = [] if column is None else [column]
    order.append(_users.c.user_id)
    query = query.order_by(*(c.desc() if desc else c.asc() for c in order)).limit(limit)
    return [User(**row._mapping) for row in connection.execute(query)]


def create_user(connection: Connection, db_id: str, user_id: str, **columns: Any) -> None:
    """Create user ``user_id`` with ``columns`` (``user_type`` required)."""
    connection.execute(
        insert(_users).values(
            db_id=db_id,
            user_id=user_id,
            is_demo=columns["user_type"] == "demo",
            **_created_now(),
            **columns,
        )
    )


def update_user(connection: Connection, db_id: str, user_id: str, **changes: Any) -> None:
    """Set ``changes`` (columns) of an existing user; ``updated`` becomes now."""
    if "user_type" in changes:
        changes["is_demo"] = changes["user_type"] == "demo"
    connection.execute(
        update(_users)
        .where(_users.c.db_id == db_id, _users.c.user_id == user_id)
        .values(**changes, updated=utcnow())
    )


def delete_user(connection: Connection, db_id: str, user_id: str) -> bool:
    """Erase user ``user_id`` and their refresh tokens; whether the user existed."""
    tokens = schema.refresh_tokens
    connection.execute(
        delete(tokens).where(tokens.c.db_id == db_id, tokens.c.user_id == user_id)
    )
    gone = connection.execute(
        delete(_users).where(_users.c.db_id == db_id, _users.c.user_id == user_id)
    )
    return gone.rowcount > 0
