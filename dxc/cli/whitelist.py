"""``flask dxc whitelist [ORIGIN] [--delete]``: the browser origins a database allows.

The same rules as ``npx dexie-cloud whitelist``. Running web workers see a
change within a few seconds (``OriginCache.TTL_SECONDS``).
"""

from __future__ import annotations

import click

from dxc.cli.common import db_option, existing_database, json_option, print_rows, services
from dxc.manage.whitelist import add_origin, delete_origin, list_origins


@click.command("whitelist")
@click.argument("origin", required=False)
@click.option("--delete", "remove", is_flag=True, help="Remove ORIGIN instead of adding it.")
@click.option("--force", is_flag=True, help="Add ORIGIN even if it is of no known form.")
@db_option
@json_option
def whitelist(
    origin: str | None, remove: bool, force: bool, db_url: str | None, as_json: bool
) -> None:
    """List the browser origins a database allows, or add or remove ORIGIN."""
    db_id = existing_database(db_url)
    if origin is None:
        if remove:
            raise click.UsageError("give the ORIGIN to delete")
        rows = [{"origin": o} for o in list_origins(services(), db_id)]
        print_rows(rows, as_json, "No origins are whitelisted.")
        return
    if remove:
        removed = delete_origin(services(), db_id, origin)
        click.echo(f"Removed {origin}." if removed else f"{origin} was not whitelisted.")
    else:
        added = add_origin(services(), db_id, origin, force)
        click.echo(f"Whitelisted {origin}." if added else f"{origin} was whitelisted already.")


COMMANDS = (whitelist,)
