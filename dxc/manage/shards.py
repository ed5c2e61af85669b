"""Adding, changing, removing and describing shards (``flask dxc add-shard`` and friends).

A shard is a PostgreSQL database that holds the synced data of the logical
databases placed on it; the control database records it (name, connection
string, weight, read-only) and where each database lives. The default shard
is the control database itself. New databases go to a writable shard drawn
by weight (:func:`dxc.storage.shards.pick_shard`). Connection strings are
stored sealed and shown masked (:mod:`dxc.storage.shard_urls`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import URL, Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from dxc.config import ConfigError, parse_connection_string
from dxc.errors import Conflict, Invalid, NotFound
from dxc.services import Services
from dxc.storage import shards as shard_store
from dxc.storage.databases import DEFAULT_SHARD
from dxc.storage.engines import make_engine
from dxc.storage.migrate import upgrade
from dxc.storage.objects import ObjectStore
from dxc.storage.shard_copy import database_tables
from dxc.storage.shard_urls import masked

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: Seconds ``shards`` waits for each shard before calling it unreachable.
PROBE_SECONDS = 3


@dataclass(frozen=True)
class ShardReport:
    """One row of ``flask dxc shards``."""

    name: str
    url: str  #: the password masked
    weight: int
    read_only: bool
    databases: list[str]
    objects: int | None  #: None: unknown (unreachable)
    size_bytes: int | None  #: None: unknown (unreachable, or not PostgreSQL)
    health: str


def add_shard(services: Services, name: str, connection_string: str, weight: int) -> ShardReport:
    """Register a new shard after checking that it answers and migrating it."""
    _check_name(name)
    _check_weight(weight)
    url = _shard_url(connection_string)
    with services.control.connect() as connection:
        existing = shard_store.list_shards(connection)
    if any(row.name == name for row in existing):
        raise Conflict(f"there is a shard named {name!r} already")
    for row in existing:
        if _same_database(_url(row.url) if row.url else services.control.url, url):
            raise Conflict(f"{masked(url)} is shard {row.name!r} already")
    _prepare(url)
    with services.control.begin() as connection:
        shard_store.add_shard(connection, name, services.router.seal.columns(url), weight)
    return next(report for report in describe(services) if report.name == name)


def update_shard(
    services: Services,
    name: str,
    connection_string: str | None = None,
    weight: int | None = None,
    read_only: bool | None = None,
) -> ShardReport:
    """Change a shard's connection string (the same data, e.g. a new password or host),
    weight or read-only flag. Running workers notice the change within
    ``SHARD_CHECK_SECONDS`` and reopen the shard (dxc.storage.router)."""
    row = _existing(services, name)
    values: dict[str, object] = {}
    if connection_string is not None:
        if row.url is None:
            raise Invalid(
                f"the {DEFAULT_SHARD!r} shard is the control database: change DEXIE_CLOUD instead"
            )
        url = _shard_url(connection_string)
        _prepare(url)
        values.update(services.router.seal.columns(url))
    if weight is not None:
        _check_weight(weight)
        values["weight"] = weight
    if read_only is not None:
        values["read_only"] = read_only
    if not values:
        raise Invalid("nothing to change: give --url, --weight, --read-only or --writable")
    with services.control.begin() as connection:
        shard_store.update_shard(connection, row.id, **values)
    services.router.close(row.id)
    return next(report for report in describe(services) if report.name == name)


def remove_shard(services: Services, name: str) -> None:
    """Forget a shard that holds nothing; a refusal naming the commands that would empty it."""
    row = _existing(services, name)
    if row.url is None:
        raise Conflict(f"the {DEFAULT_SHARD!r} shard is the control database: it cannot be removed")
    with services.control.connect() as connection:
        placed = shard_store.databases_on(connection).get(row.id, [])
        moves = [
            move for move in shard_store.unfinished_moves(connection)
            if row.id in (move.from_shard, move.to_shard)
        ]
        others = [s for s in shard_store.list_shards(connection) if s.id != row.id]
    if moves:
        commands = "; ".join(f"flask --app app dxc move-realms --db {move.db_id} --to "
                             f"{_name_of(others, move.to_shard, name)}" for move in moves)
        raise Conflict(f"shard {name!r} takes part in unfinished moves; finish them: {commands}")
    if placed:
        target = _drain_target(others)
        commands = "\n".join(
            f"  flask --app app dxc move-realms --db {db_id} --to {target}" for db_id in placed
        )
        raise Conflict(
            f"shard {name!r} still holds {len(placed)} database(s); move them away first:\n"
            f"{commands}"
        )
    with services.router.shard(row.id).transaction(read_only=True) as connection:
        leftovers = sum(
            connection.scalar(select(func.count()).select_from(table)) or 0
            for table in database_tables()
        )
    if leftovers:
        raise Conflict(
            f"shard {name!r} still has {leftovers} rows of databases that the control "
            "database does not place there; inspect it before removing the shard"
        )
    with services.control.begin() as connection:
        shard_store.remove_shard(connection, row.id)
    services.router.close(row.id)


def describe(services: Services) -> list[ShardReport]:
    """Every shard: its databases, objects, size and whether it answers."""
    with services.control.connect() as connection:
        rows = shard_store.list_shards(connection)
        placed = shard_store.databases_on(connection)
    reports = []
    for row in rows:
        objects = size = None
        try:
            engine = services.router.shard(row.id).engine
            objects, size = _usage(engine, placed.get(row.id, []))
            health = "ok"
        except DBAPIError as error:
            health = "unreachable: " + _reason(error)
        reports.append(
            ShardReport(
                name=row.name,
                url=masked(row.url) if row.url else f"{masked(services.control.url)} (control)",
                weight=row.weight,
                read_only=row.read_only,
                databases=placed.get(row.id, []),
                objects=objects,
                size_bytes=size,
                health=health,
            )
        )
    return reports


def _usage(engine: Engine, db_ids: list[str]) -> tuple[int, int | None]:
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # LOCAL: a pooler in transaction mode (PgBouncer) must not keep it for others.
            connection.execute(text(f"SET LOCAL statement_timeout = {PROBE_SECONDS * 1000}"))
        objects = sum(ObjectStore(connection, db_id).live_total() for db_id in db_ids)
        size = (
            connection.scalar(text("SELECT pg_database_size(current_database())"))
            if connection.dialect.name == "postgresql" else None
        )
        connection.rollback()
    return objects, size


def _prepare(url: URL) -> None:
    """Check that ``url`` answers, then bring it to the newest shard schema."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        upgrade(engine, "shard")
    except DBAPIError as error:
        raise Invalid(f"cannot use {masked(url)}: {_reason(error)}") from None
    finally:
        engine.dispose()


def _shard_url(connection_string: str) -> URL:
    try:
        url = parse_connection_string(connection_string, "the connection string")
    except ConfigError as error:
        raise Invalid(str(error)) from None
    if url.get_backend_name() != "postgresql":
        raise Invalid("a shard is a PostgreSQL database (postgresql://… or Server=…;Database=…)")
    return url


def _existing(services: Services, name: str) -> shard_store.ShardRow:
    with services.control.connect() as connection:
        row = shard_store.find_shard(connection, name)
    if row is None:
        raise NotFound(f"there is no shard named {name!r}")
    return row


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise Invalid(
            "a shard name is 1 to 64 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )


def _check_weight(weight: int) -> None:
    if not 0 <= weight <= 1_000_000:
        raise Invalid("the weight is a whole number from 0 (no new databases) to 1000000")


def _drain_target(others: list[shard_store.ShardRow]) -> str:
    writable = [row for row in others if not row.read_only and row.weight > 0]
    return (writable or others)[0].name if others else DEFAULT_SHARD


def _name_of(rows: list[shard_store.ShardRow], shard_id: int, fallback: str) -> str:
    return next((row.name for row in rows if row.id == shard_id), fallback)


def _same_database(a: URL, b: URL) -> bool:
    def where(url: URL) -> tuple[str | None, int, str | None]:
        return (url.host or "localhost", url.port or 5432, url.database)

    return a.get_backend_name() == b.get_backend_name() and where(a) == where(b)


def _url(url: URL | str) -> URL:
    return make_url(url)


def _reason(error: DBAPIError) -> str:
    return (str(error.orig).strip().splitlines() or ["no reason given"])[0][:200]
