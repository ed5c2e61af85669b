"""``flask dxc compact-ydocs``: merge piled-up Y.js updates now (a store schedules it too)."""

from __future__ import annotations

import click

from dxc.cli.common import db_option, existing_database, services
from dxc.manage import databases


@click.command("compact-ydocs")
@db_option
@click.option("--all", "every", is_flag=True, help="Every database of the installation.")
@click.option(
    "--more-than", type=click.IntRange(min=1), default=None,
    help="Compact documents with more updates than this (default: DXC_Y_COMPACT_AFTER).",
)
def compact_ydocs(db_url: str | None, every: bool, more_than: int | None) -> None:
    """Merge the updates of each Y.js document with more than DXC_Y_COMPACT_AFTER of them."""
    db_ids = databases.list_databases(services()) if every else [existing_database(db_url)]
    compaction = services().ycompaction
    total = sum(compaction.compact(db_id, more_than) for db_id in db_ids)
    click.echo(f"Merged away {total} Y update(s) in {len(db_ids)} database(s).")


COMMANDS = (compact_ydocs,)
