"""Computing the ``changes`` of a sync answer, as a stream of JSON texts.

The answer is state-based: for every key the client must learn about we send
the server's current picture, an ``upsert`` of the whole object if the client
may see it, else a ``delete``. The client folds operations per key, so one
operation per key is enough, and the order across keys does not matter.

What the client must learn about:

* keys its own request named or that the server's criteria touched (echo,
  rollback of refused transactions, resends, criteria hits it did not have);
* rows of realms it already had that changed after its last pull;
* every live row of realms new to it (or all of them on a first sync);
* objects that left one of its realms for a realm it cannot see;
* of the realms it is invited to, the rows an invitee sees (the realm's
  row, its roles, its own member rows): all of them for invitations new to
  it, the changed ones for the others; and deletes for the other member and
  role rows it still holds (a realm it left for an invitation again keeps
  its ACL rows on the device, which purges only the realm's objects).

Stored values are TSON text already, so they are written out verbatim.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from dxc.access import ACCESS_TABLES, RealmAccess, RealmSet
from dxc.access.members import MEMBERS_TABLE
from dxc.cooperative import take_turns
from dxc.protocol.request import LastPull
from dxc.storage.objects import BATCH, ObjectStore, StoredObject


@dataclass(frozen=True)
class PullPlan:
    tables: frozenset[str]  #: tables the client syncs
    visible: frozenset[str]  #: realms the client may read now
    known: tuple[str, ...]  #: visible realms it already had at ``since``
    since: int  #: its last revision (meaningful only for ``known``)
    upto: int  #: the revision this answer brings it to
    #: (table, key) of the rows it sees of realms it is only invited to.
    invited: frozenset[tuple[str, str]] = frozenset()
    #: Realms whose rows it already had at ``since`` (as realm or invitation).
    invited_known: frozenset[str] = frozenset()
    #: Of those, the ones it had as realms: it holds all their rows.
    demoted: tuple[str, ...] = ()
    #: Every revision after ``since`` up to ``upto`` was committed by the request
    #: being answered: what changed in them is what it touched, echoed from there.
    own_range: bool = False

    def shows(self, row: StoredObject) -> bool:
        return row.realm_id in self.visible or (row.tbl, row.key) in self.invited


def plan_pull(
    access: RealmAccess,
    tables: frozenset[str],
    last_pull: LastPull | None,
    since: int | None,
    upto: int,
    committed: Collection[int] = (),
) -> tuple[RealmSet, PullPlan]:
    """The principal's realm sets now, and what the client is missing of them.

    ``since`` None (a first sync, or a revision that is not ours) sends everything.
    ``committed``: the revisions the request being answered committed. When they
    are all that came after ``since`` (a device that was up to date pushing alone,
    the common case), the changes and departures of its realms are not read: each
    revision is taken under the database's lock until its commit, so nobody else
    wrote at those revisions, and the request echoes every key it wrote.
    """
    realm_set = access.realm_set()
    had_realms = set(last_pull.realms) if since is not None and last_pull else set()
    had_invites = set(last_pull.invite_realms) if since is not None and last_pull else set()
    plan = PullPlan(
        tables=tables,
        visible=frozenset(realm_set.realms),
        known=tuple(r for r in realm_set.realms if r in had_realms),
        since=since or 0,
        upto=upto,
        invited=access.invitation_rows(realm_set.invites),
        invited_known=frozenset(realm_set.invites).intersection(had_realms | had_invites),
        demoted=tuple(
            r for r in realm_set.invites if r in had_realms and access.left_after(r, since or 0)
        ),
        own_range=since is not None and _all_committed(committed, since, upto),
    )
    return realm_set, plan


def _all_committed(committed: Collection[int], since: int, upto: int) -> bool:
    """Whether ``committed`` holds every revision after ``since`` up to ``upto``."""
    return 0 < upto - since <= len(committed) and all(
        rev in committed for rev in range(since + 1, upto + 1)
    )


def pull_changes(
    store: ObjectStore,
    plan: PullPlan,
    touched: dict[str, set[str]],
    written: Mapping[tuple[str, str], StoredObject],
    as_sent: Mapping[tuple[str, str], StoredObject],
) -> Iterator[str]:
    """JSON texts of the ``changes`` entries, one ``{table, muts}`` each.

    ``written`` holds rows this request stored: those of revision
    ``plan.upto`` are the server's state at that revision, not read again.
    Of those, the rows in ``as_sent`` (stored as the client sent them) that it
    may see are not sent back: its device holds them, and an echo would only
    rewrite them there (the spec's diff echo: an empty diff).
    """
    sent: set[tuple[str, str]] = set()
    fresh = {pair: row for pair, row in written.items() if row.rev == plan.upto}
    sent.update(
        pair for pair, row in fresh.items() if as_sent.get(pair) is row and plan.shows(row)
    )
    for table, keys in touched.items():
        if table in plan.tables:
            yield from _current_state(store, plan, table, keys, sent, fresh)
    departures = (
        store.departures(plan.known, plan.since, plan.upto) if _may_have_left(store, plan) else ()
    )
    for table, keys in _group(departures).items():
        if table in plan.tables:
            keys = keys - _sent_keys(sent, table)
            yield from _current_state(store, plan, table, keys, sent, fresh)
    for table, keys in _group(plan.invited).items():
        if table in plan.tables:
            yield from _invitation_rows(store, plan, table, keys - _sent_keys(sent, table), sent)
    for table, keys in _group(_invitation_leftovers(store, plan, sent)).items():
        if table in plan.tables:
            yield from _current_state(store, plan, table, keys, sent, fresh)
    new_realms = sorted(plan.visible.difference(plan.known))
    rows = itertools.chain(
        store.changed(plan.known, plan.since, plan.upto)
        if plan.known and not plan.own_range
        else (),
        store.snapshot(new_realms, plan.upto) if new_realms else (),
    )
    batch: list[StoredObject] = []
    for row in rows:
        if row.tbl in plan.tables and (row.tbl, row.key) not in sent:
            batch.append(row)
            if len(batch) >= BATCH:
                yield from _entries(batch)
                batch = []
                take_turns()
    yield from _entries(batch)


def _may_have_left(store: ObjectStore, plan: PullPlan) -> bool:
    """Whether an object may have left a realm the client knows, after its revision:
    not if every revision since was the request's own (it echoes what it wrote), nor
    if the counter's newest departure came before."""
    if plan.own_range or not plan.known:
        return False
    departure_rev = store.notes.departure_rev
    return departure_rev is None or departure_rev > plan.since


def _current_state(
    store: ObjectStore,
    plan: PullPlan,
    table: str,
    keys: set[str],
    sent: set[tuple[str, str]],
    fresh: Mapping[tuple[str, str], StoredObject],
) -> Iterator[str]:
    keys = sorted(key for key in keys if (table, key) not in sent)
    rows = store.get_many(table, [key for key in keys if (table, key) not in fresh])
    rows.update((key, fresh[table, key]) for key in keys if (table, key) in fresh)
    state = []
    for key in keys:
        row = rows.get(key)
        if row is None or row.deleted or not plan.shows(row):
            row = StoredObject(table, key, "", None, 0, True, None)
        state.append(row)
        sent.add((table, key))
    yield from _entries(state)


def _invitation_rows(
    store: ObjectStore, plan: PullPlan, table: str, keys: set[str], sent: set[tuple[str, str]]
) -> Iterator[str]:
    rows = store.get_many(table, sorted(keys)).values()
    new = [
        row
        for row in rows
        if not row.deleted
        and row.rev <= plan.upto
        and (row.realm_id not in plan.invited_known or row.rev > plan.since)
    ]
    sent.update((table, row.key) for row in new)
    yield from _entries(new)


def _invitation_leftovers(
    store: ObjectStore, plan: PullPlan, sent: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    """ACL rows of invitation realms that the client may hold but no longer sees.

    Only a realm the principal really left (``demoted``) can have left other
    members' rows on the device; for the others a member row is never sent,
    so that a forged ``lastPull`` learns no member ids.
    """
    if not plan.invited_known:
        return set()
    earlier = sorted(plan.invited_known.difference(plan.demoted))
    candidates = _acl_rows(store, plan, plan.demoted, 0)
    candidates.update(
        pair for pair in _acl_rows(store, plan, earlier, plan.since) if pair[0] != MEMBERS_TABLE
    )
    return {
        pair
        for pair in candidates
        if pair[0] in ACCESS_TABLES and pair not in plan.invited and pair not in sent
    }


def _acl_rows(
    store: ObjectStore, plan: PullPlan, realms: Sequence[str], since: int
) -> set[tuple[str, str]]:
    """(table, key) of rows of ``realms`` changed after ``since`` or that left them."""
    if not realms:
        return set()
    rows = {(row.tbl, row.key) for row in store.changed(realms, since, plan.upto)}
    rows.update(store.departures(realms, plan.since, plan.upto))
    return rows


def _entries(rows: Sequence[StoredObject]) -> Iterator[str]:
    by_table: dict[str, list[StoredObject]] = {}
    for row in rows:
        by_table.setdefault(row.tbl, []).append(row)
    for table, table_rows in by_table.items():
        upserts = [r for r in table_rows if not r.deleted]
        deletes = [r for r in table_rows if r.deleted]
        muts = []
        if upserts:
            muts.append(
                '{"type":"upsert","keys":%s,"values":[%s]}'
                % (_keys(upserts), ",".join(r.value for r in upserts))
            )
        if deletes:
            muts.append('{"type":"delete","keys":%s}' % _keys(deletes))
        yield '{"table":%s,"muts":[%s]}' % (json.dumps(table, ensure_ascii=False), ",".join(muts))


def _keys(rows: Iterable[StoredObject]) -> str:
    return json.dumps([r.key for r in rows], ensure_ascii=False)


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for table, key in pairs:
        grouped.setdefault(table, set()).add(key)
    return grouped


def _sent_keys(sent: set[tuple[str, str]], table: str) -> set[str]:
    return {key for t, key in sent if t == table}
