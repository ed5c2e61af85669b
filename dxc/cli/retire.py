"""``flask dxc stats|delete-db``: whether a database is still used here, and deleting it
for good (the last steps of moving it to another installation, docs/migration.md)."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click

from dxc.activity import ALIVE_FLUSHES, current_minute
from dxc.auth.otp import OtpRefused
from dxc.cli.common import database_id, existing_database, services
from dxc.manage import retire
from dxc.storage import activity, redirects, retired
from dxc.storage import databases as database_store


@click.command("stats")
@click.option("--db", "db_url", required=True, help="The database's URL.")
@click.option("--minutes", default=5, show_default=True, type=click.IntRange(1, 24 * 60),
              help="How many minutes back to count requests (this one included).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats(db_url: str, minutes: int, as_json: bool) -> None:
    """Open /changes sockets and /sync requests of a database, from every worker.

    Requests forwarded to the installation the database moved to (after
    `redirect`) are counted apart from those served here: once both stay at
    zero, no client uses this installation for it any more. Counts reach the
    control database every DXC_STATS_FLUSH_SECONDS (5 s) from each worker.
    """
    db_id = database_id(db_url)
    now = time.time()
    period = services().settings.stats_flush_seconds
    with services().control.connect() as connection:
        connection.execution_options(read_only=True)  # no write lock on SQLite
        deleted = retired.get(connection, db_id)
        if deleted is None and not database_store.exists(connection, db_id):
            raise click.ClickException(f"there is no database {db_id!r} here")
        moved = redirects.get(connection, db_id)
        since = current_minute(now) - minutes + 1
        per_minute = activity.minutes(connection, db_id, since)
        sockets = activity.sockets(connection, db_id, int(now - ALIVE_FLUSHES * period))
    target = moved.target_url if moved else deleted.target_url if deleted else None
    report = {
        "db": db_id,
        "state": "deleted" if deleted else "moved" if moved else "served",
        "movedTo": target,
        "minutes": minutes,
        "openSockets": sockets.sockets,
        "relayedSockets": sockets.relayed,
        "workersWithSockets": sockets.workers,
        "syncs": sum(m.syncs for m in per_minute),
        "forwarded": sum(m.forwarded for m in per_minute),
        "perMinute": [
            {"minute": _iso(m.minute), "syncs": m.syncs, "forwarded": m.forwarded}
            for m in per_minute
        ],
    }
    if as_json:
        click.echo(json.dumps(report))
    else:
        _print(report)


def _iso(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).isoformat()


def _print(report: dict[str, Any]) -> None:
    moved = f" (moved to {report['movedTo']})" if report["movedTo"] else ""
    click.echo(f"{report['db']}: {report['state']}{moved}")
    click.echo(f"  open sockets: {report['openSockets']} served here, "
               f"{report['relayedSockets']} relayed")
    click.echo(f"  last {report['minutes']} minute(s): {report['syncs']} sync request(s) "
               f"served here, {report['forwarded']} request(s) forwarded")
    for minute in report["perMinute"]:
        click.echo(f"    {minute['minute'][:16]}  syncs {minute['syncs']:>6}  "
                   f"forwarded {minute['forwarded']:>6}")


@click.command("delete-db")
@click.argument("db_url")
@click.option("--email", help="The owner who confirms (default: the database's first owner).")
@click.option("--code-stdin", is_flag=True, help="Read the confirmation code from stdin.")
@click.option("--keep-redirect-days", type=click.FloatRange(min=0),
              default=retire.KEEP_REDIRECT_DAYS, show_default=True,
              help="How long a database that moved (`redirect`) is still forwarded.")
def delete_db(db_url: str, email: str | None, code_stdin: bool,
              keep_redirect_days: float) -> None:
    """Delete a database and all its data for good, confirmed by a code mailed to its owner.

    A database that moved to another installation (`redirect`) is still
    forwarded there for --keep-redirect-days; after that, and at once for
    any other database, its URL answers 410 Gone.
    """
    db_id = existing_database(db_url)
    owner = retire.owner_email(services(), db_id, email)
    try:
        otp_id = retire.request_confirmation(services(), db_id, owner)
    except OtpRefused as refused:
        raise click.ClickException(refused.message) from None
    click.echo(f"A confirmation code was sent to {owner}.")
    if code_stdin:
        code = sys.stdin.readline().strip()
    else:
        code = click.prompt(f"The code mailed to {owner} (deletes {db_id} for good)").strip()
    retire.confirm(services(), db_id, otp_id, code, owner)
    entry = retire.delete_database(services(), db_id, keep_redirect_days)
    click.echo(f"Database {db_id} was deleted.")
    if entry.forward_until is not None:
        click.echo(f"Its clients are forwarded to {entry.target_url} until "
                   f"{entry.forward_until:%Y-%m-%d %H:%M} UTC; then its URL answers 410.")
    else:
        click.echo("Its URL answers 410 Gone from now on.")


COMMANDS = (stats, delete_db)
