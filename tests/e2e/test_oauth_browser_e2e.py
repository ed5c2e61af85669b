"""Sign-in with a real OpenID Connect provider in a real browser (issue 15).

The provider is the certified npm ``oidc-provider`` (``oidc/provider.mjs``) with one test
user, registered with ``flask dxc oauth add`` as a custom provider. Headless Chromium
(the system's, through playwright-core) opens the app page (``browser/oauth_page.html``,
the real dexie-cloud-addon, on its own whitelisted origin), whose login shows the provider
chooser; the driver (``browser/run_oauth.mjs``) picks the provider, signs in on the
provider's own login and consent pages, and comes back with ``dxc-auth``: the addon
exchanges the code, writes and syncs. Then the provider is stopped and the same browser
profile comes back: it syncs again, refreshing its token (access tokens live 4 minutes
here, under the client's 5-minute margin, so every sync refreshes first).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from app import create_app
from dxc.manage.whitelist import whitelist
from dxc.storage import schema
from tests.conftest import free_port
from tests.e2e.runner import E2E
from tests.e2e.site import static_site

CHROMIUM = Path("/usr/bin/chromium")
USER = {"login": "carol", "password": "any", "email": "carol@example.com", "name": "Carol Test"}
CLIENT_ID = "dxc-e2e"
CLIENT_SECRET = "dxc-e2e-client-secret-0123456789"
TIMEOUT = 300  # the flow has four steps of up to 60 s each (run_oauth.mjs)


@pytest.fixture
def server_env() -> dict[str, str]:
    # As in production, only the whitelist admits the app; tokens under the refresh margin.
    return {"DXC_CORS_ORIGINS": "", "REDIS_URL": "", "DXC_ACCESS_TOKEN_TTL": "240"}


@pytest.fixture
def page_port(tmp_path: Path) -> Iterator[int]:
    """A static server for the app page and the npm packages, on a port of its own."""
    with static_site(tmp_path / "site", "oauth_page.html") as port:
        yield port


def _needs() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the browser test needs Node 20+")
    for package in ("playwright-core", "oidc-provider", "dexie-cloud-addon"):
        if not (E2E / "node_modules" / package).is_dir():
            pytest.skip(f"tests/e2e/node_modules lacks {package}: run `npm ci` in tests/e2e")
    if not CHROMIUM.exists():
        pytest.skip("Chromium is missing: `apt-get install chromium` (scripts/test does it)")
    return node


@pytest.fixture
def identity_provider(tmp_path: Path, server) -> Iterator[dict[str, Any]]:
    """The OpenID Connect provider in its own Node process; ``stop()`` ends it."""
    node = _needs()
    port = free_port()
    db_id = server.create_database().rsplit("/", 1)[1]
    callback = f"{server.url}/{db_id}/oauth/callback/idp"
    process = subprocess.Popen(
        [node, str(E2E / "oidc" / "provider.mjs"), json.dumps({
            "port": port, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
            "redirectUri": callback, "user": USER,
        })],
        cwd=E2E, stdout=subprocess.PIPE, stderr=(tmp_path / "provider.log").open("wb"), text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith("{"):
        process.kill()
        pytest.fail(f"the provider did not start: {(tmp_path / 'provider.log').read_text()}")

    def stop() -> None:
        process.terminate()
        process.wait(timeout=10)

    yield {"issuer": json.loads(line)["issuer"], "db_id": db_id, "stop": stop}
    if process.poll() is None:
        stop()


def run_browser(profile: Path, page_url: str, title: str, login: dict | None) -> dict[str, Any]:
    command = [_needs(), str(E2E / "browser" / "run_oauth.mjs"), json.dumps({
        "executablePath": str(CHROMIUM), "userDataDir": str(profile), "pageUrl": page_url,
        "title": title, "login": login})]
    done = subprocess.run(command, cwd=E2E, capture_output=True, text=True, timeout=TIMEOUT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return json.loads(lines[-1])


def stored_titles(server, db_id: str, owner: str) -> list[str]:
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        values = connection.scalars(select(schema.objects.c.value).where(
            schema.objects.c.db_id == db_id, schema.objects.c.tbl == "items",
            schema.objects.c.owner == owner, schema.objects.c.deleted.is_(False),
        )).all()
    return sorted(json.loads(value)["title"] for value in values)


def refreshes(server) -> int:
    """Signed refresh requests the server has answered (each leaves its stamp)."""
    with server.services.control.connect() as connection:
        return connection.scalar(select(func.count()).select_from(schema.used_refresh_stamps))


def register(server, db_id: str, issuer: str, page_origin: str) -> str:
    """``flask dxc oauth add`` and the page's whitelisting, as an operator would."""
    app = create_app(server.services.settings)
    try:
        with app.app_context():
            added = app.test_cli_runner().invoke(args=[
                "dxc", "oauth", "add", "idp", "--issuer", issuer, "--client-id", CLIENT_ID,
                "--client-secret", CLIENT_SECRET, "--display-name", "Test IdP", "--db", db_id,
            ])
    finally:
        app.extensions["dxc"].control.dispose()
    assert added.exit_code == 0, added.output
    assert whitelist(server.services, db_id, {"origin": page_origin}) == 1
    return added.output


def test_login_with_a_real_oidc_provider_then_sync_and_refresh_without_it(
    server, page_port, identity_provider, tmp_path
):
    db_id, issuer = identity_provider["db_id"], identity_provider["issuer"]
    page_origin = f"http://localhost:{page_port}"
    output = register(server, db_id, issuer, page_origin)
    assert f"{server.url}/{db_id}/oauth/callback/idp" in output
    page_url = f"{page_origin}/?db={quote(server.url + '/' + db_id, safe='')}"
    profile = tmp_path / "chromium-profile"

    first = run_browser(profile, page_url, "signed in with the provider", {
        "provider": "idp", "issuer": issuer, "user": USER["login"],
        "password": USER["password"]})
    assert first.get("error") is None, first
    chooser = first["dialogs"][0]
    assert chooser["type"] == "generic", first["dialogs"]
    assert {o["name"]: o["value"] for o in chooser["options"]} == {
        "provider": "idp", "otp": "email"}
    login_page, consent_page, back = first["pages"]
    assert login_page.startswith(issuer) and consent_page.startswith(issuer)
    assert back.startswith(page_origin)
    assert (first["userId"], first["email"], first["name"]) == (
        USER["email"], USER["email"], USER["name"])
    assert first["phase"] == "in-sync", first
    assert stored_titles(server, db_id, USER["email"]) == ["signed in with the provider"]

    identity_provider["stop"]()
    before = refreshes(server)
    later = run_browser(profile, page_url, "after the provider left", None)
    assert later.get("error") is None, later
    assert later["userId"] == USER["email"] and later["phase"] == "in-sync", later
    assert refreshes(server) > before
    assert stored_titles(server, db_id, USER["email"]) == [
        "after the provider left", "signed in with the provider"]
    assert "Traceback" not in server.log()
