"""Moving a logical database to another shard while its clients keep writing.

1. Record the move in the control database (``shard_moves``: ``copying``).
2. Copy the database's rows to the target in passes, from consistent
   snapshots of the source, each pass the rows changed since the last one,
   while writers go on. The last pass compares both copies whole (row counts
   and a content hash per table).
3. Hold the writes: take the database's revision lock on the source (every
   writer needs it, so writers wait; at most ``hold_seconds``, else the hold is
   given up and tried again after another pass). Copy the last changes and the
   revision counter, and compare the two copies before anything switches: of
   the tables whose rows change only by revision, the rows written after the
   last pass (and the count of all), the other tables whole. The bytes of
   blobs, which never change, are compared before the hold; in it only those
   of blobs uploaded since.
4. Fence the source (its revision counter goes, so a writer that still routes
   there writes nothing: ``NotOnShard``, and /sync retries on the new shard),
   then switch the placement in the control database (``switched``). When the
   source is the control database itself, fence and switch are one transaction.
5. After the placement caches of other processes expired, delete the old copy
   and forget the move.

Revisions keep their numbers (the counter travels with the rows), so every
revision token a client holds stays valid: clients just go on syncing.

A move killed at any step leaves the database on exactly one shard: the
source until the switch, the target after it. Running the move again
finishes it: from the start of the copy while ``copying`` with the source
unfenced, by switching when the source was fenced, by removing the old copy
when ``switched``. ``DXC_MOVE_FAIL_AT`` (a step name) kills the process at
that step, for the tests of exactly this.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, Engine, delete, select, text

from dxc.errors import Conflict, Invalid, NotFound, Refused
from dxc.services import Services
from dxc.storage import schema
from dxc.storage import shards as shard_store
from dxc.storage.clock import as_utc, utcnow
from dxc.storage.objects import ObjectStore, refresh_statistics
from dxc.storage.router import PLACEMENT_TTL, UnknownDatabase
from dxc.storage.shard_copy import (
    TableCheck,
    Upload,
    blob_digests_of_copies,
    blob_uploads,
    check_copies,
    copy_revision_counter,
    copy_rows,
    head_revision,
    mend_documents,
    remove_rows,
)

#: Steps at which ``DXC_MOVE_FAIL_AT`` can kill a move (what the tests interrupt).
STEPS = ("before-copy", "mid-copy", "before-switch", "after-switch")
#: A pass that copied fewer rows than this is followed by the final, held one.
SMALL_PASS_ROWS = 500
#: Passes before the hold is tried whatever the last one copied.
MAX_PASSES = 10
#: Holds tried before a move gives up (the database is too busy: run it again later).
MAX_HOLDS = 5
#: Extra seconds after :data:`PLACEMENT_TTL` before the old copy is deleted.
CACHE_MARGIN_SECONDS = 1.0

Say = Callable[[str], None]


class MoveFailed(Refused):
    """The move stopped before the switch; the database stays where it was."""


@dataclass(frozen=True)
class MoveReport:
    db_id: str
    from_shard: str
    to_shard: str
    rows: int  #: rows copied, all passes together
    held_seconds: float  #: how long writes were held
    revision: int | None  #: the revision the database had at the switch


@dataclass(frozen=True)
class DrainPlan:
    """The databases ``move-realms --from`` moves, and what they weigh."""

    db_ids: list[str]  #: in the order they are moved
    objects: int  #: their live objects
    total: int  #: the live objects of every database on the shard


class _HoldTooLong(Exception):
    """The final pass ran past the hold's budget: writers are released, try again."""


def move_database(
    services: Services, db_id: str, to_name: str, hold_seconds: float, say: Say = lambda _: None
) -> MoveReport:
    """Move ``db_id`` to shard ``to_name`` (or finish an interrupted move there)."""
    report, source = _switch_database(services, db_id, to_name, hold_seconds, say)
    _remove_old_copy(services, db_id, source, say)
    return report


def drain(
    services: Services, from_name: str, to_name: str, fraction: float, hold_seconds: float,
    say: Say = lambda _: None,
) -> list[MoveReport]:
    """Move about ``fraction`` of shard ``from_name``'s live objects to ``to_name``, one
    database after the other (see :func:`plan_drain`). A failure stops there: the databases
    moved stay moved, and running it again goes on from what is left. The old copies are
    removed once all moved: the wait for other processes' placement caches is then one,
    not one per database."""
    plan = plan_drain(services, from_name, to_name, fraction)
    say(f"Moving {len(plan.db_ids)} database(s) with {plan.objects} of the {plan.total} live "
        f"objects on {from_name!r} to {to_name!r}: {', '.join(plan.db_ids) or 'none'}")
    switched: list[tuple[MoveReport, Engine]] = []
    try:
        for db_id in plan.db_ids:
            switched.append(_switch_database(services, db_id, to_name, hold_seconds, say))
    finally:
        for report, source in switched:
            _remove_old_copy(services, report.db_id, source, say)
    return [report for report, _ in switched]


def _switch_database(
    services: Services, db_id: str, to_name: str, hold_seconds: float, say: Say
) -> tuple[MoveReport, Engine]:
    """Every step of a move but the last: the database is served from shard ``to_name``;
    its old copy (on the engine returned) is still there."""
    move, names = _start(services, db_id, to_name)
    source = services.router.shard(move.from_shard).engine
    target = services.router.shard(move.to_shard).engine
    rows, held, revision = 0, 0.0, None
    if move.state == shard_store.COPYING:
        with _snapshot(source) as connection:
            fenced = head_revision(connection, db_id) is None
        if fenced:
            say("The source was fenced before the switch: checking the copy again.")
            _verify(source, target, db_id)
            _switch(services.control, db_id, move.to_shard)
        else:
            _step("before-copy")
            rows, held, revision = _copy_and_switch(
                services, db_id, move, source, target, hold_seconds, say
            )
        services.router.forget(db_id)
        _step("after-switch")
    report = MoveReport(db_id, names[move.from_shard], names[move.to_shard], rows, held, revision)
    return report, source


def plan_drain(services: Services, from_name: str, to_name: str, fraction: float) -> DrainPlan:
    """Which databases of shard ``from_name`` to move for ``fraction`` (0 < f <= 1) of its
    live objects: first those with an unfinished move to ``to_name`` (an interrupted run),
    then the biggest first, each that still fits within the fraction (an empty database
    weighs one object), and at least one. ``1`` moves every database: the shard is empty.
    A database with an unfinished move elsewhere is left to that move."""
    if not 0 < fraction <= 1:
        raise Invalid("--fraction must be above 0 and at most 1")
    with services.control.connect() as connection:
        shards = {row.name: row for row in shard_store.list_shards(connection)}
        placed = shard_store.databases_on(connection)
        unfinished = shard_store.unfinished_moves(connection)
    for name in (from_name, to_name):
        if name not in shards:
            raise NotFound(f"there is no shard named {name!r}")
    source, target = shards[from_name], shards[to_name]
    if source.id == target.id:
        raise Invalid("--from and --to name the same shard")
    resumed = [m.db_id for m in unfinished if (m.from_shard, m.to_shard) == (source.id, target.id)]
    elsewhere = {m.db_id for m in unfinished} - set(resumed)  # finished with their own --db
    objects = _live_objects(services, source.id, placed.get(source.id, []))

    def weight(db_id: str) -> int:
        return objects.get(db_id, 0) + 1  # an empty database weighs one object

    budget = fraction * sum(weight(db_id) for db_id in objects)
    candidates = [db_id for db_id in objects if db_id not in elsewhere and db_id not in resumed]
    chosen, taken = list(resumed), sum(weight(db_id) for db_id in resumed if db_id in objects)
    for db_id in sorted(candidates, key=lambda d: (-weight(d), d)):
        if taken + weight(db_id) <= budget:
            chosen.append(db_id)
            taken += weight(db_id)
    if not chosen and candidates:
        chosen = [min(candidates, key=lambda d: (weight(d), d))]
    return DrainPlan(
        chosen, sum(objects.get(db_id, 0) for db_id in chosen), sum(objects.values())
    )


def _live_objects(services: Services, shard_id: int, db_ids: list[str]) -> dict[str, int]:
    """Each database's live objects on the shard."""
    with services.router.shard(shard_id).transaction(read_only=True) as connection:
        return {db_id: ObjectStore(connection, db_id).live_total() for db_id in db_ids}


def _start(
    services: Services, db_id: str, to_name: str
) -> tuple[shard_store.Move, dict[int, str]]:
    with services.control.begin() as connection:
        shards = shard_store.list_shards(connection)
        target = next((row for row in shards if row.name == to_name), None)
        if target is None:
            raise NotFound(f"there is no shard named {to_name!r}")
        placed = shard_store.placement(connection, db_id)
        if placed is None:
            raise UnknownDatabase(db_id)
        move = shard_store.current_move(connection, db_id)
        if move is None:
            if placed[0] == target.id:
                raise Conflict(f"database {db_id} is on shard {to_name!r} already")
            if target.read_only:
                raise Conflict(f"shard {to_name!r} is read-only: it takes no databases")
            shard_store.start_move(connection, db_id, placed[0], target.id)
            move = shard_store.current_move(connection, db_id)
            assert move is not None
        elif move.to_shard != target.id:
            names = {row.id: row.name for row in shards}
            raise Conflict(
                f"database {db_id} has an unfinished move to {names[move.to_shard]!r}: finish it "
                f"first with `flask --app app dxc move-realms --db {db_id} --to "
                f"{names[move.to_shard]}`"
            )
    return move, {row.id: row.name for row in shards}


def _copy_and_switch(
    services: Services,
    db_id: str,
    move: shard_store.Move,
    source: Engine,
    target: Engine,
    hold_seconds: float,
    say: Say,
) -> tuple[int, float, int]:
    with target.begin() as connection:
        remove_rows(connection, db_id)  # what an interrupted attempt left
    rows, since, blobs_alike = 0, None, set[Upload]()
    for holds in range(1, MAX_HOLDS + 1):
        copied, since = _catch_up(source, target, db_id, since, say)
        rows += copied
        refresh_statistics(target, copied)  # before the target takes the database's pushes
        with _snapshot(source) as reading, _snapshot(target) as written:
            blobs_alike = _compare_blobs(reading, written, db_id, blobs_alike)
        try:
            copied, held, revision = _hold_and_switch(
                services, db_id, move, source, target, since, hold_seconds, blobs_alike
            )
        except _HoldTooLong:
            say(f"The final pass took longer than {hold_seconds} s; writes go on, trying again.")
            continue
        say(f"Writes were held {held * 1000:.0f} ms (attempt {holds}).")
        return rows + copied, held, revision
    raise MoveFailed(
        f"database {db_id} changes too fast to move within a hold of {hold_seconds} s; "
        "run the command again later or with a longer --hold-seconds"
    )


def _catch_up(
    source: Engine, target: Engine, db_id: str, since: int | None, say: Say
) -> tuple[int, int]:
    """Copy passes, while writes go on, until one copies little; (rows, revision reached).
    The last pass compares both copies whole, before its copy commits: the hold then
    compares only what changed after it (see :func:`_hold_and_switch`)."""
    total = 0
    for passes in range(1, MAX_PASSES + 1):
        with _snapshot(source) as reading, target.begin() as writing:
            upto = head_revision(reading, db_id)
            if upto is None:
                raise MoveFailed(f"the source shard has no revision counter of {db_id}")
            copied = copy_rows(reading, writing, db_id, since)
            last = copied < SMALL_PASS_ROWS or passes == MAX_PASSES
            if last:
                _compare_copies(reading, writing, db_id, but=schema.revisions.name)
        total += copied
        say(f"Pass {passes}: copied {copied} rows up to revision {upto}.")
        if since is None:
            _step("mid-copy")
        since = upto
        if last:
            break
    return total, upto


def _hold_and_switch(
    services: Services,
    db_id: str,
    move: shard_store.Move,
    source: Engine,
    target: Engine,
    since: int,
    hold_seconds: float,
    blobs_alike: set[Upload],
) -> tuple[int, float, int]:
    """The final pass, with the writes held; (rows, seconds held, revision).
    The copies were found alike at revision ``since``: the tables whose rows change only
    by revision have their rows of later revisions compared, and counted; the others
    whole. ``blobs_alike``: the blobs whose bytes were found alike in both copies before."""
    with source.connect() as holding, target.connect() as writing:
        with holding.begin():
            revision = _lock_revision(holding, db_id, hold_seconds)
            held_from = time.monotonic()
            with writing.begin():
                copied = copy_rows(holding, writing, db_id, since)
                copy_revision_counter(holding, writing, db_id)
                _compare_copies(holding, writing, db_id, changed_after=since)
                _compare_blobs(holding, writing, db_id, blobs_alike)
                if time.monotonic() - held_from > hold_seconds:
                    raise _HoldTooLong
            # The target holds the database now; the source stops holding it.
            table = schema.revisions
            holding.execute(delete(table).where(table.c.db_id == db_id))
            if source is services.control:
                shard_store.switch(holding, db_id, move.to_shard)
                _step("before-switch")
        held = time.monotonic() - held_from
    if source is not services.control:
        _step("before-switch")
        _switch(services.control, db_id, move.to_shard)
    return copied, held, revision


def _lock_revision(connection: Connection, db_id: str, hold_seconds: float) -> int:
    """Take the database's revision lock (every writer then waits), for at most
    ``hold_seconds`` of waiting for the writers that hold it now."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SET LOCAL lock_timeout = {int(hold_seconds * 1000)}"))
    table = schema.revisions
    revision = connection.scalar(
        select(table.c.rev).where(table.c.db_id == db_id).with_for_update()
    )
    if revision is None:
        raise MoveFailed(f"the source shard has no revision counter of {db_id}")
    return revision


def _verify(source: Engine, target: Engine, db_id: str) -> None:
    """Compare the copies whole, the fenced source's (without its counter) with the target's."""
    with _snapshot(source) as reading, target.begin() as written:
        if head_revision(written, db_id) is None:
            raise MoveFailed(f"the target shard has no revision counter of {db_id}")
        _compare_copies(reading, written, db_id, but=schema.revisions.name)
        _compare_blobs(reading, written, db_id, set())


def _compare_copies(
    source: Connection, target: Connection, db_id: str, changed_after: int | None = None,
    but: str = "",
) -> None:
    """Refuse copies that differ in any table (see :func:`check_copies`). Y.js documents
    a compaction merged since they were copied are copied again first: a merge takes no
    revision, so a pass cannot see it."""
    theirs, ours = check_copies(source, target, db_id, changed_after)
    documents = schema.y_updates.name
    if theirs[documents] != ours[documents] and mend_documents(source, target, db_id):
        theirs, ours = check_copies(source, target, db_id, changed_after)
    _compare(theirs, ours, db_id, but)


def _compare(
    source: dict[str, TableCheck], target: dict[str, TableCheck], db_id: str, but: str = ""
) -> None:
    """Refuse a difference in any table (but the one named ``but``)."""
    differ = [name for name in source if name != but and source[name] != target.get(name)]
    if differ:
        raise MoveFailed(
            f"the copy of {db_id} differs from the source in {', '.join(differ)}; "
            "nothing was switched: run the command again"
        )


def _compare_blobs(
    source: Connection, target: Connection, db_id: str, alike: set[Upload]
) -> set[Upload]:
    """Compare the bytes of the source's blobs that the target holds too (same id, same
    upload) and that are not known to be ``alike`` already; the blobs known alike now.
    A blob the target lacks is left for later: in the hold, :func:`check_copies` of the
    blobs table makes sure that there is none."""
    uploads = blob_uploads(source, db_id)
    unknown = {blob_id for blob_id, _ in uploads - alike}
    theirs, ours = blob_digests_of_copies(source, target, db_id, only=unknown)
    differ = [blob_id for (blob_id, created), digest in theirs.items()
              if ours.get((blob_id, created), digest) != digest]
    if differ:
        raise MoveFailed(
            f"the copy of {db_id} differs from the source in the bytes of blob(s) "
            f"{', '.join(sorted(differ)[:5])}; nothing was switched: run the command again"
        )
    return (alike & uploads) | (theirs.keys() & ours.keys())


def _switch(control: Engine, db_id: str, to_shard: int) -> None:
    with control.begin() as connection:
        shard_store.switch(connection, db_id, to_shard)


def _remove_old_copy(services: Services, db_id: str, source: Engine, say: Say) -> None:
    """Once no process can still route to the source, delete the old copy."""
    with services.control.connect() as connection:
        switched = shard_store.moved_since(connection, db_id)
    if switched is not None:
        ready = as_utc(switched) + timedelta(seconds=PLACEMENT_TTL + CACHE_MARGIN_SECONDS)
        wait = (ready - utcnow()).total_seconds()
        if wait > 0:
            say(f"Waiting {wait:.1f} s for other processes to notice the new placement.")
            time.sleep(wait)
    with source.begin() as connection:
        remove_rows(connection, db_id)
    with services.control.begin() as connection:
        shard_store.finish_move(connection, db_id)
    say("Removed the old copy.")


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction that sees one consistent state of the database."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        connection.execution_options(read_only=True)
        with connection.begin():
            yield connection


def _step(name: str) -> None:
    """Die here if ``DXC_MOVE_FAIL_AT`` names this step (tests of interrupted moves)."""
    if os.environ.get("DXC_MOVE_FAIL_AT") == name:
        os._exit(75)


def check_options(realms: tuple[str, ...]) -> None:
    """Refuse the placement of a later version."""
    if realms:
        raise Invalid(
            "not supported yet: placement is per database in this version (move a whole "
            "database with --db DBID --to NAME, or part of a shard's with --from NAME "
            "--fraction F)"
        )
