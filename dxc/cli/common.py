"""What every ``flask dxc`` command shares: the services, the database it is about,
and printing rows as a table or as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from flask import current_app

from dxc.cli.files import CliFiles
from dxc.services import Services

Row = dict[str, Any]

#: ``--db URL``, defaulting to the ``dbUrl`` of ``./dexie-cloud.json`` like the npm CLI.
db_option = click.option(
    "--db", "db_url", help="Database URL (default: dbUrl of ./dexie-cloud.json)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def services() -> Services:
    return current_app.extensions["dxc"]


def database_id(db_url: str | None) -> str:
    """The id in a database URL (``http://host/<dbId>``); a usage error without one."""
    if not db_url:
        raise click.UsageError("no --db given and no dbUrl in ./dexie-cloud.json")
    path = urlsplit(db_url).path.strip("/")
    if not path or "/" in path:
        raise click.UsageError(f"{db_url} is not a database URL (http://host/<dbId>)")
    return path


def existing_database(db_url: str | None) -> str:
    """The id of ``--db`` (or of ``./dexie-cloud.json``), which must name a database here."""
    db_id = database_id(db_url or CliFiles(Path(".")).db_url())
    services().router.shard_for(db_id)  # an unknown database is an error, not an empty list
    return db_id


def print_rows(rows: list[Row], as_json: bool, empty: str) -> None:
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


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


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
