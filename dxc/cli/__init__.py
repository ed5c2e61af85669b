"""``flask --app app dxc …``: administering the installation from a shell."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import current_app

from dxc import tson
from dxc.cli.files import CliFiles
from dxc.manage import databases, exporter, maintenance
from dxc.manage.importer import import_document, import_ndjson
from dxc.protocol import ProtocolError
from dxc.services import Services


def _services() -> Services:
    return current_app.extensions["dxc"]


@click.group("dxc")
def dxc_cli() -> None:
    """Administer this dxc-server installation."""


@dxc_cli.command("migrate")
def migrate_command() -> None:
    """Apply database migrations to the control database and every shard."""
    databases.migrate(_services())
    click.echo("Migrations applied.")


@dxc_cli.command("init-cloud")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=".",
              help="Where to write dexie-cloud.json and dexie-cloud.key.")
def init_cloud(folder: Path) -> None:
    """Migrate, create the first database and write the dexie-cloud CLI files.

    Running it again on an initialised installation changes nothing and
    prints the existing databases.
    """
    services = _services()
    databases.migrate(services)
    existing = databases.list_databases(services)
    if existing:
        click.echo("Already initialised. Databases:")
        for db_id in existing:
            click.echo(f"  {services.settings.database_url_for(db_id)}")
        return
    created = databases.create_database(services)
    CliFiles(folder).add(services.settings.service_url, created)
    click.echo(f"Created database {created.db_id}.")
    click.echo(f"Wrote {folder / 'dexie-cloud.json'} and {folder / 'dexie-cloud.key'}.")
    click.echo("Use it in your app with:")
    click.echo(f"  db.cloud.configure({{ databaseUrl: {json.dumps(created.url)} }})")


@dxc_cli.command("create")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=".",
              help="Where to update dexie-cloud.json and dexie-cloud.key.")
def create_command(as_json: bool, folder: Path) -> None:
    """Create one more logical database and print its URL and credentials."""
    services = _services()
    created = databases.create_database(services)
    CliFiles(folder).add(services.settings.service_url, created)
    if as_json:
        click.echo(json.dumps({
            "dbUrl": created.url,
            "clientId": created.client_id,
            "clientSecret": created.client_secret,
        }))
    else:
        click.echo(f"Database URL:  {created.url}")
        click.echo(f"Client ID:     {created.client_id}")
        click.echo(f"Client secret: {created.client_secret}")


@dxc_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--db", "db_url", help="Database URL (default: dbUrl of ./dexie-cloud.json).")
def import_command(file: Path, db_url: str | None) -> None:
    """Import FILE: legacy JSON (demoUsers, roles, data), or NDJSON if it ends in .ndjson."""
    services = _services()
    db_id = _database_id(db_url or CliFiles(Path(".")).db_url())
    raw = file.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        if file.suffix.lower() == ".ndjson":
            summary = import_ndjson(services, db_id, io.BytesIO(raw))
        else:
            summary = import_document(services, db_id, tson.loads(raw))
    except (ProtocolError, tson.TSONError) as error:
        raise click.ClickException(f"{file}: {error}") from None
    click.echo(
        f"Imported into {db_id}: {summary.demo_users} demo users, {summary.roles} roles, "
        f"{summary.objects} objects, {summary.deleted} deletions."
    )


@dxc_cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--db", "db_url", help="Database URL (default: dbUrl of ./dexie-cloud.json).")
@click.option("--ndjson", is_flag=True, help="Write NDJSON (data.ndjson) instead of legacy JSON.")
@click.option("--realm", "realm_id", help="Only the objects of this realm.")
@click.option("--table", help="Only the objects of this table (and the realms and members).")
def export_command(
    file: Path, db_url: str | None, ndjson: bool, realm_id: str | None, table: str | None
) -> None:
    """Write the database to FILE (what `flask dxc import` and `npx dexie-cloud import` read)."""
    services = _services()
    db_id = _database_id(db_url or CliFiles(Path(".")).db_url())
    export = exporter.export_ndjson if ndjson else exporter.export_legacy
    with file.open("w", encoding="utf-8") as output:
        for text in export(services, db_id, realm_id, table):
            output.write(text)
    click.echo(f"Exported {db_id} to {file}.")


@dxc_cli.command("purge-deleted")
def purge_deleted_command() -> None:
    """Remove the databases whose grace period after a soft delete is over (run it daily)."""
    purged = maintenance.purge_expired(_services())
    click.echo(f"Purged {len(purged)} database(s){': ' if purged else '.'}{', '.join(purged)}")


def _database_id(db_url: str | None) -> str:
    if not db_url:
        raise click.UsageError("no --db given and no dbUrl in ./dexie-cloud.json")
    path = urlsplit(db_url).path.strip("/")
    if not path or "/" in path:
        raise click.UsageError(f"{db_url} is not a database URL (http://host/<dbId>)")
    return path


# The modules below register more commands on ``dxc_cli``.
from dxc.cli import admin, auth  # noqa: E402, F401
