"""``flask dxc databases|users|clients``: read-only views of the installation.

What an operator checks from a shell without a browser or an API client key.
Each prints a table, or JSON with ``--json`` for scripts.
"""

from __future__ import annotations

import click

from dxc.cli.common import Row, db_option, existing_database, json_option, print_rows, services
from dxc.storage import credentials, users
from dxc.storage import databases as database_store
from dxc.storage.clock import utcnow


@click.command("databases")
@json_option
def list_databases(as_json: bool) -> None:
    """List the logical databases, with their shard, users and API clients."""
    with services().control.connect() as connection:
        found = database_store.summaries(connection)
    rows: list[Row] = [
        {
            "url": services().settings.database_url_for(summary.db_id),
            "shard": summary.shard,
            "created": summary.created,
            "deleted": summary.deleted,
            "users": summary.users,
            "clients": summary.clients,
        }
        for summary in found
    ]
    print_rows(rows, as_json, "No databases.")


@click.command("users")
@json_option
@db_option
@click.option("--search", help="Only users whose id, e-mail or name contains this text.")
def list_users(as_json: bool, db_url: str | None, search: str | None) -> None:
    """List the users of a database (at most 1000; narrow with --search)."""
    db_id = existing_database(db_url)
    with services().control.connect() as connection:
        found = users.list_users(connection, db_id, search=search)
    rows: list[Row] = [
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
    print_rows(rows, as_json, "No users.")


@click.command("clients")
@json_option
@db_option
def list_clients(as_json: bool, db_url: str | None) -> None:
    """List the API clients of a database (never their secrets)."""
    db_id = existing_database(db_url)
    with services().control.connect() as connection:
        found = credentials.list_api_clients(connection, db_id)
    now = utcnow()
    rows: list[Row] = [
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
    print_rows(rows, as_json, "No clients.")


COMMANDS = (list_databases, list_users, list_clients)
