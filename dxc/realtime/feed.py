"""What a socket's client is missing: its realm set, and the changes after its revision.

The realm sets and the changes come from the sync code itself (``plan_pull``
and ``pull_changes``, as ``SyncService`` answers a pull): a ``changes``
message holds exactly what an incremental ``/sync`` pull would answer, and
the hash is the one of that answer's realm lists. It is only built when
that is safe: the client's realm set equals the server's (else it must
pull: new realms need the snapshot a pull gives), its revision is one of
ours, and the changes fit in one message. Otherwise the caller sends
``realms-changed`` and the client pulls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from dxc.access import Principal, RealmAccess, RealmSet
from dxc.protocol import live
from dxc.protocol.request import LastPull
from dxc.protocol.revisions import decode_revision, encode_revision
from dxc.realtime.shared import SharedResults
from dxc.storage import tables as table_store
from dxc.storage.objects import ObjectStore
from dxc.storage.router import Shard, ShardRouter
from dxc.sync.pull import plan_pull, pull_changes

#: Above this many characters of changes, the client pulls instead (the answer streams).
MAX_MESSAGE_CHARS = 1_000_000
#: Seconds a socket's read waits for a database that is being moved (its placement switches).
MOVE_PATIENCE_SECONDS = 10.0
#: Characters of ``changes`` messages kept for the sockets asking the same (the newest).
MAX_SHARED_CHARS = 16 * MAX_MESSAGE_CHARS


@dataclass(frozen=True)
class RealmView:
    """The ``realms`` and ``inviteRealms`` a ``/sync`` answer would give now, and their hash."""

    realms: tuple[str, ...]
    invites: tuple[str, ...] = ()
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", live.realm_set_hash(self.realms, self.invites))

    @classmethod
    def of(cls, realm_set: RealmSet) -> RealmView:
        return cls(realm_set.realms, realm_set.invites)

    @property
    def all(self) -> tuple[str, ...]:
        """Every realm the principal sees rows of (an invitation shows a few)."""
        return self.realms + self.invites


@dataclass(frozen=True)
class CatchUp:
    """The server's side of a client's ``ready``."""

    view: RealmView
    #: A ``changes`` message bringing the client to the head revision, if there is one.
    message: live.ServerMessage | None = None
    #: The client must pull: its revision is not ours, or the changes are too many.
    pull: bool = False


class LiveFeed:
    def __init__(
        self, control: Engine, router: ShardRouter, max_chars: int = MAX_MESSAGE_CHARS
    ) -> None:
        self.control = control
        self.router = router
        self.max_chars = max_chars
        self._shared: SharedResults[CatchUp] = SharedResults(
            size=_message_chars, max_size=MAX_SHARED_CHARS
        )

    def realm_view(self, db_id: str, principal: Principal) -> RealmView:
        with self.router.shard_for(db_id).transaction(read_only=True) as connection:
            access = RealmAccess(ObjectStore(connection, db_id), principal)
            return RealmView.of(access.realm_set())

    def catch_up(
        self,
        db_id: str,
        principal: Principal,
        client_rev: str | None,
        client_hash: str | None,
        heard: int | None = None,
    ) -> CatchUp:
        """Compare the client's revision and realm set with the database's head.

        ``heard``: how many changes the hub had delivered when the socket asked
        (:attr:`Hub.deliveries`; None: compute alone). Every socket asking with
        the same count whose client is where this one is, as the same principal,
        shares one answer, computed after the last change any of them heard of:
        the sockets one change woke, then the ``ready`` their clients send back.
        """
        if heard is None:
            return self._catch_up(db_id, principal, client_rev, client_hash)
        key = (db_id, principal, client_rev, client_hash, heard)
        return self._shared.get(
            key, lambda: self._catch_up(db_id, principal, client_rev, client_hash)
        )

    def _catch_up(
        self, db_id: str, principal: Principal, client_rev: str | None, client_hash: str | None
    ) -> CatchUp:
        return self.router.retrying(
            db_id,
            lambda shard: self._catch_up_on(shard, db_id, principal, client_rev, client_hash),
            MOVE_PATIENCE_SECONDS,
        )

    def _catch_up_on(
        self,
        shard: Shard,
        db_id: str,
        principal: Principal,
        client_rev: str | None,
        client_hash: str | None,
    ) -> CatchUp:
        with shard.transaction(read_only=True) as connection:
            store = ObjectStore(connection, db_id)
            # First, for the access stamp; NotOnShard if the database moved away.
            upto = store.current_revision()
            access = RealmAccess(store, principal, shard.standing)
            view = RealmView.of(access.realm_set())
            if client_hash != view.hash:
                return CatchUp(view)
            since = (decode_revision(client_rev) or {}).get(shard.id)
            if client_rev is None or since is None:
                return CatchUp(view, pull=True)
            if upto <= since:
                return CatchUp(view)
            with self.control.connect() as control:
                # Every table any client syncs (each client registers its own at its first
                # sync), read after ``upto``: a table is registered before its first write.
                tables = frozenset(table_store.get_tables(control, db_id))
            # Equal hashes: the client holds exactly these realm lists, as of ``since``.
            held = LastPull(client_rev, view.realms, view.invites)
            _, plan = plan_pull(access, tables, held, since, upto)
            entries, size = [], 0
            for entry in pull_changes(store, plan, {}, {}, {}):
                size += len(entry)
                if size > self.max_chars:
                    return CatchUp(view, pull=True)
                entries.append(entry)
        if not entries:
            return CatchUp(view)  # nothing the client can see changed
        new_rev = encode_revision({shard.id: upto})
        return CatchUp(view, live.changes(client_rev, new_rev, view.hash, entries))


def _message_chars(outcome: CatchUp) -> int:
    return 0 if outcome.message is None else len(outcome.message.text)
