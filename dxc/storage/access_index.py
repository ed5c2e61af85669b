"""The access index of one database: realm owners and members, as indexed rows.

It is derived from the ``realms`` and ``members`` objects by whoever writes
them, in the same transaction (``dxc.access.index``), so it is always as
current as the objects themselves, savepoint rollbacks included.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, and_, bindparam, delete, literal, null, or_, select, union_all
from sqlalchemy.dialects import postgresql, sqlite

from dxc.storage import schema

realms = schema.access_realms
members = schema.access_members


@dataclass(frozen=True)
class RealmEntry:
    realm_id: str
    owner: str | None


@dataclass(frozen=True)
class MemberEntry:
    member_id: str
    realm_id: str
    user_id: str | None
    email: str | None
    state: str  #: ``active``, ``pending`` or ``rejected``
    permissions: str | None  #: normalised JSON
    roles: str | None  #: JSON array of names


_MEMBER_COLUMNS = (
    members.c.member_id,
    members.c.realm_id,
    members.c.user_id,
    members.c.email,
    members.c.state,
    members.c.permissions,
    members.c.roles,
)


#: Who a user stands for in a database: their member rows, and the realms they own.
Standing = tuple[tuple[MemberEntry, ...], tuple[str, ...]]


class StandingCache:
    """Who users stood for, by database and access stamp (``revisions.access_stamp``).

    Every change of the access index writes a new random stamp in the same
    transaction, so what was read at a stamp holds as long as the stamp reads
    the same, in every process. An entry is stored only after its stamp was
    read, so it is never older than its stamp (it may be newer, as a read at
    that moment would be). The oldest entries go first when it is full.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, int, str, str | None], Standing] = OrderedDict()

    def get(self, db_id: str, stamp: int, user_id: str, email: str | None) -> Standing | None:
        return self._entries.get((db_id, stamp, user_id, email))

    def put(
        self, db_id: str, stamp: int, user_id: str, email: str | None, standing: Standing
    ) -> None:
        self._entries[db_id, stamp, user_id, email] = standing
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


#: Who the user stands for in a database, in one round trip: the member rows of
#: existing realms that stand for them (by user id, or by e-mail while the row has
#: no user id), then the realms they own (``member_id`` NULL).
_STANDING = union_all(
    select(*_MEMBER_COLUMNS)
    .join(
        realms,
        and_(realms.c.db_id == members.c.db_id, realms.c.realm_id == members.c.realm_id),
    )
    .where(
        members.c.db_id == bindparam("db_id"),
        or_(
            members.c.user_id == bindparam("user_id"),
            and_(members.c.user_id.is_(None), members.c.email == bindparam("email")),
        ),
    ),
    select(
        null().label("member_id"),
        realms.c.realm_id,
        null(),
        null(),
        literal("owner"),
        null(),
        null(),
    ).where(realms.c.db_id == bindparam("db_id"), realms.c.owner == bindparam("user_id")),
)


class AccessIndex:
    def __init__(self, connection: Connection, db_id: str) -> None:
        self.connection = connection
        self.db_id = db_id
        dialect = connection.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    # --- writing ------------------------------------------------------------

    def put_realm(self, entry: RealmEntry) -> None:
        statement = self._insert(realms).values(
            db_id=self.db_id, realm_id=entry.realm_id, owner=entry.owner
        )
        self.connection.execute(
            statement.on_conflict_do_update(
                index_elements=[realms.c.db_id, realms.c.realm_id],
                set_={"owner": statement.excluded.owner},
            )
        )

    def drop_realm(self, realm_id: str) -> None:
        self.connection.execute(
            delete(realms).where(realms.c.db_id == self.db_id, realms.c.realm_id == realm_id)
        )

    def put_member(self, entry: MemberEntry) -> None:
        values = {
            "realm_id": entry.realm_id,
            "user_id": entry.user_id,
            "email": entry.email,
            "state": entry.state,
            "permissions": entry.permissions,
            "roles": entry.roles,
        }
        statement = self._insert(members).values(
            db_id=self.db_id, member_id=entry.member_id, **values
        )
        self.connection.execute(
            statement.on_conflict_do_update(
                index_elements=[members.c.db_id, members.c.member_id], set_=values
            )
        )

    def drop_member(self, member_id: str) -> None:
        self.connection.execute(
            delete(members).where(members.c.db_id == self.db_id, members.c.member_id == member_id)
        )

    # --- reading ------------------------------------------------------------

    def realm(self, realm_id: str) -> RealmEntry | None:
        """The realm if its ``realms`` row exists."""
        row = self.connection.execute(
            select(realms.c.realm_id, realms.c.owner).where(
                realms.c.db_id == self.db_id, realms.c.realm_id == realm_id
            )
        ).first()
        return None if row is None else RealmEntry(*row)

    def standing(self, user_id: str, email: str | None) -> Standing:
        """The member rows of existing realms that stand for ``user_id`` (by user id,
        or by ``email`` while the row has no user id), and the realms it owns."""
        rows = self.connection.execute(
            _STANDING, {"db_id": self.db_id, "user_id": user_id, "email": email}
        )
        entries: list[MemberEntry] = []
        owned: list[str] = []
        for row in rows:
            if row.member_id is None:
                owned.append(row.realm_id)
            else:
                entries.append(MemberEntry(*row))
        return tuple(entries), tuple(owned)

    def members_of(self, realm_ids: Iterable[str]) -> list[MemberEntry]:
        realm_ids = list(realm_ids)
        if not realm_ids:
            return []
        rows = self.connection.execute(
            select(*_MEMBER_COLUMNS).where(
                members.c.db_id == self.db_id, members.c.realm_id.in_(realm_ids)
            )
        )
        return [MemberEntry(*row) for row in rows]
