"""The server started as Azure App Service and Elastic Beanstalk start it.

Each test builds the environment the platform presents (Azure's keyword
connection string in ``POSTGRESQLCONNSTR_DEXIE_CLOUD``; Beanstalk's
``PORT=8000``-style port from ``.ebextensions``), runs the platform's start
command from our files, and has the real client sync through it.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app import create_app
from dxc.config import load_settings
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.storage import schema
from tests.conftest import ROOT, _wait_for_port, free_port
from tests.e2e.runner import run_scenario

USER = "alice@demo.local"


def azure_environment(database_url: str, port: int) -> dict[str, str]:
    url = make_url(database_url)
    keyword_form = (
        f"Server={url.host};Database={url.database};Port={url.port or 5432};"
        f"User Id={url.username};Password={url.password or ''};Ssl Mode=Prefer;"
    )
    return {
        "POSTGRESQLCONNSTR_DEXIE_CLOUD": keyword_form,
        "DXC_ENV": "production",
        "DXC_SECRET": secrets.token_urlsafe(32),
        "DXC_URL": f"http://127.0.0.1:{port}",
        "PORT": str(port),
        "SCM_DO_BUILD_DURING_DEPLOYMENT": "true",
        "WEBSITE_SITE_NAME": "dxc-test",
    }


def beanstalk_environment(database_url: str, port: int) -> dict[str, str]:
    config = (ROOT / ".ebextensions" / "01-dxc.config").read_text()
    assert 'PORT: "8000"' in config and "DXC_ENV: production" in config
    return {
        "DEXIE_CLOUD": database_url,
        "DXC_ENV": "production",
        "DXC_SECRET": secrets.token_urlsafe(32),
        "DXC_URL": f"http://127.0.0.1:{port}",
        "PORT": str(port),  # 8000 on Beanstalk; a free port here
    }


def procfile_command(process: str) -> str:
    procfile = (ROOT / "Procfile").read_text()
    match = re.search(rf"^{process}:\s*(.+)$", procfile, re.MULTILINE)
    assert match, f"no {process} process in the Procfile"
    return match.group(1)


def beanstalk_start_command() -> str:
    """What the predeploy hook runs, then the Procfile's web process."""
    hook = (ROOT / ".platform" / "hooks" / "predeploy" / "01-migrate.sh").read_text()
    assert "flask --app app dxc migrate" in hook
    return f"flask --app app dxc migrate && exec {procfile_command('web')}"


def azure_startup_command() -> str:
    guide = (ROOT / "docs" / "deploy-azure.md").read_text()
    match = re.search(r'--startup-file "([^"]+)"', guide)
    assert match, "the Azure guide names no startup command"
    return match.group(1)


@pytest.mark.parametrize(
    ("environment", "command"),
    [
        (azure_environment, azure_startup_command),
        (beanstalk_environment, beanstalk_start_command),
    ],
    ids=["azure", "beanstalk"],
)
def test_platform_start_and_real_client_sync(
    request, tmp_path: Path, environment, command
) -> None:
    database_url = request.getfixturevalue("blank_database_url_postgresql")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DXC_", "DEXIE_CLOUD"))},
        **environment(database_url, port),
        "HOST": "127.0.0.1",
        "DXC_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["bash", "-c", command()], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    services = None
    try:
        _wait_for_port(port, process, log_path)
        services = create_app(load_settings(env)).extensions["dxc"]
        created = databases.create_database(services)
        import_document(services, created.db_id, {"demoUsers": {USER: {}}})
        result = run_scenario("anonymous", databaseUrl=created.url, user=USER)
        assert len(result["user"]) == 2 and result["anonymous"] == []
        assert result["anonymousRealms"] == ["rlm-public"]
        with services.router.shard_for(created.db_id).transaction() as connection:
            stored = connection.scalar(
                select(func.count()).where(
                    schema.objects.c.db_id == created.db_id, schema.objects.c.tbl == "items"
                )
            )
        assert stored == 2
        assert "Traceback" not in log_path.read_text()
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        if services:
            services.control.dispose()
