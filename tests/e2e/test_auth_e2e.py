"""Logging in end to end: the real dexie-cloud-addon and dexie-cloud CLI against the server.

One-time passwords travel the real way: the server renders the mail and its
job POSTs it to the e-mail channel's web-hook, here a receiver in the test
(``tests/mailbox.py``); the client (or the test, for the CLI) reads the code
there. Access tokens live 2 s, so the addon refreshes before every sync.
Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from dxc.storage import schema
from tests.e2e.cli_driver import CliSession, run_cli
from tests.e2e.runner import ScenarioError, run_scenario
from tests.mailbox import Mailbox

EMAIL = "ann@example.com"
OWNER = "owner@example.com"
MAX_ATTEMPTS = 3


@pytest.fixture
def server_env() -> dict[str, str]:
    # REDIS_URL empty: the server delivers mail itself (no RQ worker runs in these tests).
    return {
        "DXC_ACCESS_TOKEN_TTL": "2", "DXC_OTP_MAX_ATTEMPTS": str(MAX_ATTEMPTS), "REDIS_URL": "",
    }


def login(server, mailbox: Mailbox, **args) -> dict:
    url = server.create_database()
    try:
        result = run_scenario(
            "otp_login", databaseUrl=url, email=EMAIL, mailbox=mailbox.url, **args
        )
    except ScenarioError as error:
        raise ScenarioError(f"{error}\n--- server log (tail) ---\n{server.log()[-6000:]}") from None
    result["db_id"] = url.rsplit("/", 1)[1]
    return result


def assert_no_secrets_logged(server, *secrets: str) -> None:
    log = server.log()
    assert "Traceback" not in log, log[-6000:]
    assert "NO E-MAIL CHANNEL" not in log
    for secret in secrets:
        assert secret not in log


def test_otp_login_retries_a_wrong_code_and_refreshes_its_token(server, mailbox):
    result = login(server, mailbox, wrongCodes=1, pushes=3)
    assert result.get("loginError") is None, result
    assert result["userId"] == EMAIL
    otp_prompts = [p for p in result["prompts"] if p["type"] == "otp"]
    assert len(otp_prompts) == 2
    retry_alerts = {a["messageCode"]: a["message"] for a in otp_prompts[1]["alerts"]}
    assert retry_alerts["INVALID_OTP"] == "Invalid OTP. Please try again."
    assert result["grants"][:3] == ["otp", "otp-verify", "otp-verify"]
    # A 2 s token is always "about to expire": the addon refreshes it by itself.
    assert result["grants"].count("refresh_token") >= 3
    assert result.get("syncError") is None, result
    assert sorted(i["title"] for i in result["items"]) == ["item 1", "item 2", "item 3"]

    services = server.services
    with services.router.shard_for(result["db_id"]).transaction(read_only=True) as connection:
        owners = connection.scalars(
            select(schema.objects.c.owner).where(schema.objects.c.db_id == result["db_id"])
        ).all()
    assert owners.count(EMAIL) == 3
    with services.control.connect() as connection:
        user = connection.execute(select(schema.users).where(
            schema.users.c.db_id == result["db_id"], schema.users.c.user_id == EMAIL
        )).one()
    assert user.user_type == "prod" and user.last_login is not None
    assert mailbox.bad_signatures == 0
    assert_no_secrets_logged(server, mailbox.code(EMAIL))


def test_too_many_wrong_codes_end_the_login(server, mailbox):
    result = login(server, mailbox, wrongCodes=MAX_ATTEMPTS + 5)
    assert "TokenErrorResponseError" in result["loginError"]
    assert result["userId"] == "unauthorized"
    types = [p["type"] for p in result["prompts"]]
    assert types == ["otp"] * MAX_ATTEMPTS + ["message-alert"]
    final, = result["prompts"][-1]["alerts"]
    assert final["messageCode"] == "INVALID_OTP" and "start over" in final["message"]
    assert_no_secrets_logged(server, mailbox.code(EMAIL))


def cli_folder(tmp_path: Path, name: str) -> Path:
    """A folder of its own: the CLI writes its files next to the nearest package.json."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "package.json").write_text("{}\n")
    return folder


def test_cli_creates_a_database_and_connects(server, mailbox, tmp_path):
    first = cli_folder(tmp_path, "creator")
    create = CliSession(first, "create", "--service", f"{server.url}/service")
    create.answer("Enter your email address", OWNER)
    create.answer("Enter OTP", lambda: mailbox.code(OWNER, 1))
    code, output = create.finish()
    assert code == 0, output + server.log()[-4000:]
    assert "Successfully created new database!" in output
    config = json.loads((first / "dexie-cloud.json").read_text())
    keys = json.loads((first / "dexie-cloud.key").read_text())
    db_url = config["dbUrl"]
    assert config["serviceUrl"] == f"{server.url}/service"
    assert db_url.startswith(server.url + "/z")
    assert set(keys[db_url]) == {"clientId", "clientSecret"}

    # A later command authenticates with the written key (client_credentials, scopes []).
    code, output = run_cli(first, "connect", db_url)
    assert code == 0, output + server.log()[-4000:]
    assert f"Current database is now {db_url}" in output

    # On another machine the owner proves their e-mail and gets a key of their own.
    second = cli_folder(tmp_path, "laptop")
    connect = CliSession(second, "connect", db_url)
    connect.answer("Enter your email address", OWNER)
    connect.answer("Enter OTP", lambda: mailbox.code(OWNER, 2))
    code, output = connect.finish()
    assert code == 0, output + server.log()[-4000:]
    laptop_keys = json.loads((second / "dexie-cloud.key").read_text())
    assert laptop_keys[db_url]["clientId"] != keys[db_url]["clientId"]
    code, output = run_cli(second, "databases")
    assert code == 0 and db_url in output

    # Someone else cannot.
    third = cli_folder(tmp_path, "stranger")
    stranger = CliSession(third, "connect", db_url)
    stranger.answer("Enter your email address", EMAIL)
    stranger.answer("Enter OTP", lambda: mailbox.code(EMAIL, 1))
    code, output = stranger.finish()
    assert code != 0 and "403" in output
    assert not (third / "dexie-cloud.key").exists()

    assert_no_secrets_logged(
        server, keys[db_url]["clientSecret"], laptop_keys[db_url]["clientSecret"],
        mailbox.code(OWNER, 1), mailbox.code(OWNER, 2),
    )
