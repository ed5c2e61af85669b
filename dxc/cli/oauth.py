"""``flask dxc oauth add|list|remove|otp``: the sign-in providers of a database.

Client secrets are read from the command line or a hidden prompt, stored
encrypted and never shown again (docs/oauth.md).
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import click
import requests

from dxc.auth.oauth import OAuthBroker
from dxc.auth.oauth_providers import CUSTOM, KINDS, SecretBox, discovery_url
from dxc.cli.common import db_option, existing_database, json_option, print_rows, services
from dxc.storage import oauth as store
from dxc.storage.clock import utcnow

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


@click.group("oauth")
def oauth_group() -> None:
    """Sign in with Google, GitHub, Microsoft, Apple or any OpenID Connect provider."""


@oauth_group.command("add")
@click.argument("name")
@click.option("--client-id", required=True, help="The app's client id at the provider.")
@click.option("--client-secret", prompt=True, hide_input=True,
              help="The app's client secret (prompted for, hidden, when left out).")
@click.option("--issuer", help="OpenID Connect issuer URL (custom providers; a Microsoft tenant).")
@click.option("--type", "kind", type=click.Choice(sorted(KINDS)),
              help="Default: NAME if it is google, github, microsoft or apple, else custom-oauth2.")
@click.option("--display-name", help='What the login dialog shows: "Continue with …".')
@click.option("--icon-url", help="An icon for the login dialog.")
@click.option("--scopes", help="Space-separated scopes (default: the provider type's).")
@click.option("--disable-otp", is_flag=True, help="Also turn off login by e-mail (one-time codes).")
@db_option
def add(
    name: str, client_id: str, client_secret: str, issuer: str | None, kind: str | None,
    display_name: str | None, icon_url: str | None, scopes: str | None, disable_otp: bool,
    db_url: str | None,
) -> None:
    """Offer sign-in with provider NAME (replaces a provider of the same name)."""
    db_id = existing_database(db_url)
    if not _NAME.fullmatch(name):
        raise click.UsageError("NAME must be lower-case letters, digits and dashes")
    kind = kind or (name if name in KINDS and name != CUSTOM else CUSTOM)
    issuer = _issuer(kind, issuer)
    provider = store.Provider(
        db_id=db_id, name=name, type=kind, client_id=client_id.strip(),
        sealed_secret=SecretBox(services().settings.keyring).seal(client_secret.strip()),
        issuer=issuer, display_name=display_name, icon_url=icon_url,
        scopes=tuple(scopes.split()) if scopes else KINDS[kind].scopes, updated=utcnow(),
    )
    with services().control.begin() as connection:
        store.save_provider(connection, provider)
        if disable_otp:
            store.set_otp_enabled(connection, db_id, False)
    click.echo(f"Users of {db_id} can sign in with {name} now.")
    click.echo("Register this redirect (callback) URL at the provider:")
    click.echo(f"  {_broker().callback_url(db_id, name)}")
    if disable_otp:
        click.echo("Login by e-mail is off.")


@oauth_group.command("list")
@json_option
@db_option
def list_providers(as_json: bool, db_url: str | None) -> None:
    """List the providers of a database (never their secrets) and whether e-mail login is on."""
    db_id = existing_database(db_url)
    with services().control.connect() as connection:
        providers = store.list_providers(connection, db_id)
        otp = store.otp_enabled(connection, db_id)
    rows = [
        {
            "name": p.name,
            "type": p.type,
            "clientId": p.client_id,
            "issuer": p.issuer,
            "scopes": list(p.scopes),
            "callbackUrl": _broker().callback_url(db_id, p.name),
        }
        for p in providers
    ]
    if as_json:
        click.echo(json.dumps({"providers": rows, "otpEnabled": otp}))
        return
    print_rows(rows, False, "No providers.")
    click.echo(f"Login by e-mail: {'on' if otp else 'off'}")


@oauth_group.command("remove")
@click.argument("name")
@db_option
def remove(name: str, db_url: str | None) -> None:
    """Stop offering sign-in with provider NAME."""
    db_id = existing_database(db_url)
    with services().control.begin() as connection:
        removed = store.remove_provider(connection, db_id, name)
    if not removed:
        raise click.ClickException(f"{db_id} has no provider {name!r}")
    click.echo(f"Removed {name} from {db_id}.")


@oauth_group.command("otp")
@click.argument("state", type=click.Choice(["on", "off"]))
@db_option
def otp(state: str, db_url: str | None) -> None:
    """Turn login by e-mail (one-time codes) on or off for app users.

    Off, /auth-providers answers otpEnabled: false and e-mail logins that ask
    for ACCESS_DB are refused; the dexie-cloud CLI's own e-mail login still works.
    """
    db_id = existing_database(db_url)
    with services().control.begin() as connection:
        store.set_otp_enabled(connection, db_id, state == "on")
    click.echo(f"Login by e-mail is {state} for {db_id}.")


def _broker() -> OAuthBroker:
    return OAuthBroker(services().control, services().settings)


def _issuer(kind: str, issuer: str | None) -> str | None:
    """The issuer to store; a custom one must answer discovery now, not at the first login."""
    if kind == "github":
        if issuer:
            raise click.UsageError("GitHub has no issuer (it is not OpenID Connect)")
        return None
    if not issuer:
        if kind == CUSTOM:
            raise click.UsageError("a custom provider needs --issuer (its OpenID Connect issuer)")
        return KINDS[kind].issuer
    parts = urlsplit(issuer)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise click.UsageError("--issuer must be an https:// URL (http only on this machine)")
    try:
        answer = requests.get(discovery_url(issuer), timeout=10)
        answer.raise_for_status()
        metadata = answer.json()
    except (requests.RequestException, ValueError) as error:
        raise click.ClickException(
            f"{discovery_url(issuer)} does not answer OpenID Connect discovery: {error}"
        ) from None
    if not isinstance(metadata, dict) or "authorization_endpoint" not in metadata:
        raise click.ClickException(f"{discovery_url(issuer)} is not OpenID Connect metadata")
    announced = str(metadata.get("issuer", ""))
    if "{tenantid}" not in announced and announced.rstrip("/") != issuer.rstrip("/"):
        raise click.ClickException(f"the provider calls itself {announced!r}, not {issuer!r}")
    return announced


COMMANDS = (oauth_group,)
