"""``flask dxc migrate|init-cloud|create|connect|purge-deleted``: the installation and
its logical databases, and the ``dexie-cloud.json`` / ``.key`` files that point at them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dxc.cli.common import database_id, services
from dxc.cli.files import CliFiles
from dxc.manage import databases, maintenance

folder_option = click.option(
    "--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=".",
    help="Where to write dexie-cloud.json and dexie-cloud.key.",
)


@click.command("migrate")
def migrate() -> None:
    """Apply database migrations to the control database and every shard."""
    databases.migrate(services())
    click.echo("Migrations applied.")


@click.command("init-cloud")
@folder_option
def init_cloud(folder: Path) -> None:
    """Migrate, create the first database and write the dexie-cloud CLI files.

    Running it again on an initialised installation changes nothing and
    prints the existing databases (`flask dxc connect` writes their files).
    """
    databases.migrate(services())
    existing = databases.list_databases(services())
    if existing:
        click.echo("Already initialised. Databases:")
        for db_id in existing:
            click.echo(f"  {services().settings.database_url_for(db_id)}")
        return
    created = databases.create_database(services())
    click.echo(f"Created database {created.db_id}.")
    _write_files(folder, created)
    click.echo("Use it in your app with:")
    click.echo(f"  db.cloud.configure({{ databaseUrl: {json.dumps(created.url)} }})")


@click.command("create")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--id", "db_id",
    help="Its id: that of a database moving here, so that clients keep their local data.",
)
@folder_option
def create(as_json: bool, db_id: str | None, folder: Path) -> None:
    """Create one more logical database and print its URL and credentials."""
    created = databases.create_database(services(), db_id=db_id)
    CliFiles(folder).add(services().settings.service_url, created)
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


@click.command("connect")
@click.argument("db_url", required=False)
@folder_option
def connect(db_url: str | None, folder: Path) -> None:
    """Write dexie-cloud.json and dexie-cloud.key for an existing database into a folder.

    What `npx dexie-cloud connect DB_URL` does, without an e-mail login: the
    key is a new API client with every scope. DB_URL may be left out when the
    installation has one database. Sample apps' configure scripts read these files.
    """
    db_id = database_id(db_url) if db_url else _only_database()
    _write_files(folder, databases.add_admin_key(services(), db_id))


@click.command("purge-deleted")
def purge_deleted() -> None:
    """Remove the databases whose grace period after a soft delete is over (run it daily)."""
    purged = maintenance.purge_expired(services())
    click.echo(f"Purged {len(purged)} database(s){': ' if purged else '.'}{', '.join(purged)}")


def _only_database() -> str:
    existing = databases.list_databases(services())
    if len(existing) != 1:
        urls = " ".join(services().settings.database_url_for(db_id) for db_id in existing)
        raise click.UsageError(
            f"give the database URL; this installation has {len(existing)}: {urls}"
            if existing else "this installation has no database yet: run `flask dxc init-cloud`"
        )
    return existing[0]


def _write_files(folder: Path, key: databases.DatabaseKey) -> None:
    CliFiles(folder).add(services().settings.service_url, key)
    click.echo(f"Wrote {folder / 'dexie-cloud.json'} and {folder / 'dexie-cloud.key'}.")


COMMANDS = (migrate, init_cloud, create, connect, purge_deleted)
