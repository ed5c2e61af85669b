"""The origin whitelist in a real browser: headless Chromium, the real dexie-cloud-addon (B7).

A small static server in the test serves ``browser/page.html`` (and the npm
packages) on its own port, so the page's origin differs from the sync
server's. The same page is opened as ``http://localhost:<port>``, which is
whitelisted, and as ``http://127.0.0.1:<port>``, which is not. The server
runs with ``DXC_CORS_ORIGINS`` empty, as in production.

Needs Node, ``tests/e2e/node_modules`` (playwright-core) and Chromium at
``/usr/bin/chromium`` (Debian package ``chromium``; scripts/test installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dxc.manage.whitelist import whitelist
from dxc.storage import schema
from tests.e2e.runner import E2E
from tests.e2e.site import static_site

CHROMIUM = Path("/usr/bin/chromium")
USER = "alice@demo.local"
TIMEOUT = 90


@pytest.fixture
def server_env() -> dict[str, str]:
    # Empty, not unset: the development default admits both pages (this machine's).
    return {"DXC_CORS_ORIGINS": "", "REDIS_URL": ""}


@pytest.fixture
def page_port(tmp_path: Path) -> Iterator[int]:
    """A static server for the page and the npm packages, on a port of its own."""
    with static_site(tmp_path / "site", "page.html") as port:
        yield port


def run_page(page_url: str, **args: Any) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the browser test needs Node 20+")
    if not (E2E / "node_modules" / "playwright-core").is_dir():
        pytest.skip("tests/e2e/node_modules lacks playwright-core: run `npm ci` in tests/e2e")
    if not CHROMIUM.exists():
        pytest.skip("Chromium is missing: `apt-get install chromium` (scripts/test does it)")
    command = [node, str(E2E / "browser" / "run_page.mjs"), json.dumps({
        "executablePath": str(CHROMIUM), "pageUrl": page_url, "args": args})]
    done = subprocess.run(command, cwd=E2E, capture_output=True, text=True, timeout=TIMEOUT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"{done.stdout}\n{done.stderr[-6000:]}"
    return json.loads(lines[-1])


def stored_titles(server, db_id: str) -> list[str]:
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        values = connection.scalars(select(schema.objects.c.value).where(
            schema.objects.c.db_id == db_id, schema.objects.c.tbl == "items",
            schema.objects.c.owner == USER,
        )).all()
    return [json.loads(value)["title"] for value in values]


def test_only_a_whitelisted_origin_syncs(server, page_port):
    url = server.create_database(demo_users=(USER,))
    db_id = url.rsplit("/", 1)[1]
    assert whitelist(server.services, db_id, {"origin": f"http://localhost:{page_port}"}) == 1

    allowed = run_page(f"http://localhost:{page_port}/", databaseUrl=url, userId=USER,
                       title="from the whitelisted page")
    assert allowed.get("error") is None, allowed
    assert allowed["userId"] == USER
    assert stored_titles(server, db_id) == ["from the whitelisted page"]

    refused = run_page(f"http://127.0.0.1:{page_port}/", databaseUrl=url, userId=USER,
                       title="from a foreign page")
    assert refused.get("userId") != USER, refused
    assert any("blocked by CORS policy" in line for line in refused["console"]), refused
    assert any(f"'http://127.0.0.1:{page_port}' is whitelisted" in alert
               for alert in refused["alerts"]), refused
    assert stored_titles(server, db_id) == ["from the whitelisted page"]
    assert "Traceback" not in server.log()
