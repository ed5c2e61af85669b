"""``flask dxc add-shard|update-shard|remove-shard|shards|move-realms``: where data lives.

See docs/shards.md. Connection strings are never printed with their password.
"""

from __future__ import annotations

from dataclasses import asdict

import click

from dxc.cli.common import database_id, json_option, print_rows, services
from dxc.manage import moves
from dxc.manage import shards as shard_tasks

LATER = "Not supported yet"


@click.command("add-shard")
@click.argument("name")
@click.argument("connection_string", metavar="CONNECTION-STRING")
@click.option("--weight", type=int, default=1, show_default=True,
              help="Share of new databases placed on it, relative to the other shards' weights.")
def add_shard(name: str, connection_string: str, weight: int) -> None:
    """Add the PostgreSQL database CONNECTION-STRING as shard NAME.

    The same forms as DEXIE_CLOUD: postgresql://user:password@host:port/db or
    Server=host;Database=db;Port=5432;User Id=user;Password=…;Ssl Mode=Require;
    The database must exist and answer; it is migrated to the shard schema.
    """
    report = shard_tasks.add_shard(services(), name, connection_string, weight)
    click.echo(f"Added shard {report.name} ({report.url}), weight {report.weight}.")


@click.command("update-shard")
@click.argument("name")
@click.option("--url", "connection_string", help="A new connection string for the same data.")
@click.option("--weight", type=int, help="A new weight (0: no new databases).")
@click.option("--read-only/--writable", "read_only", default=None,
              help="Whether the shard is closed to new and moved-in databases.")
def update_shard(
    name: str, connection_string: str | None, weight: int | None, read_only: bool | None
) -> None:
    """Change shard NAME's connection string, weight or read-only flag.

    Running workers switch to a new connection string within a few seconds, no restart.
    """
    report = shard_tasks.update_shard(services(), name, connection_string, weight, read_only)
    state = "read-only" if report.read_only else "writable"
    click.echo(f"Shard {report.name} ({report.url}): weight {report.weight}, {state}.")


@click.command("remove-shard")
@click.argument("name")
def remove_shard(name: str) -> None:
    """Forget shard NAME; refused while it holds data (the refusal says how to move it)."""
    shard_tasks.remove_shard(services(), name)
    click.echo(f"Removed shard {name} (its PostgreSQL database itself is left as it was).")


@click.command("shards")
@json_option
def list_shards(as_json: bool) -> None:
    """Every shard: connection (password masked), weight, databases, objects, size, health."""
    reports = shard_tasks.describe(services())
    if as_json:
        print_rows([asdict(report) for report in reports], True, "")
        return
    print_rows(
        [
            {
                "name": r.name,
                "url": r.url,
                "weight": r.weight,
                "read-only": r.read_only,
                "databases": len(r.databases),
                "objects": r.objects,
                "size": _size(r.size_bytes),
                "health": r.health,
            }
            for r in reports
        ],
        False,
        "No shards.",
    )


@click.command("move-realms")
@click.option("--to", "to_name", help="The shard to move to.")
@click.option("--db", "db_ref", help="The database to move: its id or URL.")
@click.option("--realm", "realms", multiple=True, help=f"{LATER} (placement is per database).")
@click.option("--from", "from_name",
              help="Move databases of this shard instead: every one, or --fraction of it.")
@click.option("--fraction", type=float,
              help="With --from: the share of the shard's live objects to move (default 1).")
@click.option("--hold-seconds", type=float,
              help="Longest hold of the database's writes (default: DXC_MOVE_HOLD_SECONDS).")
def move_realms(
    to_name: str | None,
    db_ref: str | None,
    realms: tuple[str, ...],
    from_name: str | None,
    fraction: float | None,
    hold_seconds: float | None,
) -> None:
    """Move a database (--db), or databases of a shard (--from), to shard --to while
    their clients keep syncing.

    --from NAME moves its biggest databases first, as many as fit in --fraction of its
    live objects (at least one); without --fraction, all of them. Running the command
    again after an interruption finishes the move.
    """
    moves.check_options(realms)
    if not to_name or bool(db_ref) == bool(from_name):
        raise click.UsageError(
            "give where to move and what: --to NAME with --db DBID or --from NAME"
        )
    if fraction is not None and not from_name:
        raise click.UsageError("--fraction goes with --from")
    hold = hold_seconds if hold_seconds is not None else services().settings.move_hold_seconds
    if hold <= 0:
        raise click.UsageError("--hold-seconds must be positive")
    if from_name:
        reports = moves.drain(
            services(), from_name, to_name, 1.0 if fraction is None else fraction, hold,
            click.echo,
        )
    else:
        db_id = database_id(db_ref) if "/" in db_ref else db_ref  # type: ignore[operator]
        reports = [moves.move_database(services(), db_id, to_name, hold, click.echo)]
    for report in reports:
        click.echo(
            f"Moved database {report.db_id} from {report.from_shard} to {report.to_shard}"
            + (f" at revision {report.revision}." if report.revision is not None else ".")
        )


def _size(size: int | None) -> str | None:
    if size is None:
        return None
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return None


COMMANDS = (add_shard, update_shard, remove_shard, list_shards, move_realms)
