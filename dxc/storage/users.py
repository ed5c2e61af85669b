"""User records of a logical database (control database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from dxc.storage import schema
from dxc.storage.clock import utcnow


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


def get_user(connection: Connection, db_id: str, user_id: str) -> User | None:
    row = connection.execute(
        select(schema.users).where(
            schema.users.c.db_id == db_id, schema.users.c.user_id == user_id
        )
    ).one_or_none()
    return User(**row._mapping) if row else None


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
                created=utcnow(),
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
                        created=utcnow(),
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
    connection.execute(
        update(schema.users)
        .where(schema.users.c.db_id == db_id, schema.users.c.user_id == user_id)
        .values(last_login=utcnow())
    )
