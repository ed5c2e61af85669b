"""``flask dxc init-email-channel`` and ``flask dxc revoke-sessions``: logins and mail."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import click

from dxc.cli.common import database_id, services
from dxc.storage import credentials


@click.command("init-email-channel")
@click.argument("url")
@click.option("--secret", help="The web-hook's signing secret (default: a new random one).")
def init_email_channel(url: str, secret: str | None) -> None:
    """Send e-mail (one-time passwords) as signed JSON POSTs to the web-hook URL.

    See docs/email-channel.md for the payload and how to check its signature.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.UsageError(f"{url} is not an http(s) URL")
    if parts.scheme == "http" and services().settings.env == "production":
        click.echo("WARNING: mails carry one-time passwords; use an https:// web-hook.", err=True)
    generated = secret is None
    secret = secret or secrets.token_urlsafe(32)
    services().mailer.configure(url, secret)
    click.echo(f"E-mail goes to {url} now.")
    if generated:
        click.echo("Its signing secret (configure your web-hook with it; it is not shown again):")
        click.echo(f"  {secret}")


@click.command("revoke-sessions")
@click.argument("email")
@click.option("--db", "db_url", help="Only in this database (default: in every database).")
def revoke_sessions(email: str, db_url: str | None) -> None:
    """Log EMAIL out: its refresh tokens stop working.

    Access tokens already issued stay valid until they expire
    (DXC_ACCESS_TOKEN_TTL), since clients are not told.
    """
    db_id = database_id(db_url) if db_url else None
    with services().control.begin() as connection:
        count = credentials.revoke_refresh_tokens(connection, email.strip().lower(), db_id)
    where = f"database {db_id}" if db_id else "every database"
    click.echo(f"Revoked {count} session{'s' if count != 1 else ''} of {email} in {where}.")


COMMANDS = (init_email_channel, revoke_sessions)
