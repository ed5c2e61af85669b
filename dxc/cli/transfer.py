"""``flask dxc import|export``: a database's data to and from files, as the npm CLI has them."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import click

from dxc import tson
from dxc.cli.common import db_option, existing_database, services
from dxc.manage import exporter
from dxc.manage.importer import import_document, import_ndjson
from dxc.protocol import ProtocolError


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
def import_command(file: Path, db_url: str | None) -> None:
    """Import FILE: legacy JSON (demoUsers, roles, data), or NDJSON if it ends in .ndjson."""
    db_id = existing_database(db_url)
    raw = file.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        if file.suffix.lower() == ".ndjson":
            summary = import_ndjson(services(), db_id, io.BytesIO(raw))
        else:
            summary = import_document(services(), db_id, tson.loads(raw))
    except (ProtocolError, tson.TSONError) as error:
        raise click.ClickException(f"{file}: {error}") from None
    click.echo(
        f"Imported into {db_id}: {summary.demo_users} demo users, {summary.roles} roles, "
        f"{summary.objects} objects, {summary.deleted} deletions."
    )


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@click.option("--ndjson", is_flag=True, help="Write NDJSON (data.ndjson) instead of legacy JSON.")
@click.option("--realm", "realm_id", help="Only the objects of this realm.")
@click.option("--table", help="Only the objects of this table (and the realms and members).")
def export_command(
    file: Path, db_url: str | None, ndjson: bool, realm_id: str | None, table: str | None
) -> None:
    """Write the database to FILE (what `flask dxc import` and `npx dexie-cloud import` read)."""
    db_id = existing_database(db_url)
    export = exporter.export_ndjson if ndjson else exporter.export_legacy
    with file.open("w", encoding="utf-8") as output:
        for text in export(services(), db_id, realm_id, table):
            output.write(text)
    click.echo(f"Exported {db_id} to {file}.")


COMMANDS = (import_command, export_command)
