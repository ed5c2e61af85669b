"""``flask dxc collect-blobs``: remove orphaned blobs now (uploads also schedule it hourly)."""

from __future__ import annotations

import click

from dxc.blobs.collector import collect_orphans
from dxc.cli.common import db_option, existing_database, services
from dxc.manage import databases


@click.command("collect-blobs")
@db_option
@click.option("--all", "every", is_flag=True, help="Every database of the installation.")
def collect_blobs(db_url: str | None, every: bool) -> None:
    """Remove blobs older than DXC_BLOB_ORPHAN_GRACE that no object refers to."""
    db_ids = databases.list_databases(services()) if every else [existing_database(db_url)]
    total = 0
    for db_id in db_ids:
        total += collect_orphans(services().blobs, db_id)
    click.echo(f"Removed {total} orphaned blob(s) from {len(db_ids)} database(s).")


COMMANDS = (collect_blobs,)
