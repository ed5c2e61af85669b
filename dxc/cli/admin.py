"""``flask dxc databases|users|clients|whitelist``: read-only views of the installation.

What an operator checks from a shell without a browser or an API client key.
Each prints a table, or JSON with ``--json`` for scripts. Imported at the end
of ``dxc.cli``, whose group and helpers they use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select

from dxc.cli import _database_id, _services, dxc_cli
from dxc.cli.files import CliFiles
from dxc.storage import credentials, origins, schema, users
from dxc.storage.clock import utcnow

Row = dict[str, Any]


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _print(rows: list[Row], as_json: bool, empty: str) -> None:
    """``rows`` as JSON, or as a table whose columns are the keys of the first row."""
    if as_json:
        click.echo(json.dumps([{k: _json_value(v) for k, v in row.items()} for row in rows]))
        return
    if not rows:
        click.echo(empty)
        return
    columns = list(rows[0])
    cells = [[_cell(row[column]) for column in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    for line in [columns, *cells]:
        padded = (text.ljust(width) for text, width in zip(line, widths, strict=True))
        click.echo("  ".join(padded).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return " ".join(map(str, value))
    return str(value)


def _listing(
    name: str, empty: str | None = None
) -> Callable[[Callable[..., list[Row]]], click.Command]:
    """Register ``flask dxc <name> [--json]``, printing the rows the function returns."""

    def register(function: Callable[..., list[Row]]) -> click.Command:
        @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
        @wraps(function)
        def command(as_json: bool, **options: Any) -> None:
            _print(function(**options), as_json, empty or f"No {name}.")

        return dxc_cli.command(name)(command)

    return register


_DB_OPTION = click.option(
    "--db", "db_url", help="Database URL (default: dbUrl of ./dexie-cloud.json)."
)


def _db_id(db_url: str | None) -> str:
    db_id = _database_id(db_url or CliFiles(Path(".")).db_url())
    _services().router.shard_for(db_id)  # an unknown database is an error, not an empty list
    return db_id


@_listing("databases")
def databases() -> list[Row]:
    """List the logical databases, with their shard, users and API clients."""
    services = _services()
    db, shards = schema.databases, schema.shards
    count_users = (
        select(func.count()).where(schema.users.c.db_id == db.c.id).scalar_subquery()
    )
    count_clients = (
        select(func.count()).where(schema.api_clients.c.db_id == db.c.id).scalar_subquery()
    )
    query = (
        select(db.c.id, shards.c.name, db.c.created, db.c.deleted, count_users, count_clients)
        .join(shards, shards.c.id == db.c.shard_id)
        .order_by(db.c.created, db.c.id)
    )
    with services.control.connect() as connection:
        found = connection.execute(query).all()
    return [
        {
            "url": services.settings.database_url_for(row[0]),
            "shard": row[1],
            "created": row[2],
            "deleted": row[3],
            "users": row[4],
            "clients": row[5],
        }
        for row in found
    ]


@_listing("users")
@_DB_OPTION
@click.option("--search", help="Only users whose id, e-mail or name contains this text.")
def list_users(db_url: str | None, search: str | None) -> list[Row]:
    """List the users of a database (at most 1000; narrow with --search)."""
    db_id = _db_id(db_url)
    with _services().control.connect() as connection:
        found = users.list_users(connection, db_id, search=search)
    return [
        {
            "userId": user.user_id,
            "email": user.email,
            "name": user.name,
            "type": user.user_type,
            "created": user.created,
            "lastLogin": user.last_login,
        }
        for user in found
    ]


@_listing("clients")
@_DB_OPTION
def clients(db_url: str | None) -> list[Row]:
    """List the API clients of a database (never their secrets)."""
    db_id = _db_id(db_url)
    with _services().control.connect() as connection:
        found = credentials.list_api_clients(connection, db_id)
    now = utcnow()
    return [
        {
            "clientId": client.client_id,
            "email": client.email,
            "verified": client.verified,
            "serviceAccount": client.service_account,
            "expires": client.expires,
            "expired": client.expired(now),
            "scopes": list(client.scopes),
        }
        for client in found
    ]


@_listing("whitelist", "No origins are whitelisted.")
@_DB_OPTION
def whitelist(db_url: str | None) -> list[Row]:
    """List the browser origins a database allows (change them with `npx dexie-cloud whitelist`)."""
    db_id = _db_id(db_url)
    with _services().control.connect() as connection:
        return [{"origin": origin} for origin in origins.list_origins(connection, db_id)]
