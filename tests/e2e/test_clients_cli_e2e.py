"""API clients and the whitelist with the real ``dexie-cloud`` CLI 3.0.7 (spec B3.2-B3.10).

The owner creates a database by e-mail (OTP read from the test mailbox),
authorizes a colleague who claims the pending client with ``reconnect``,
adds and rotates a service account, rotates their own key, recovers from an
expired key by e-mail, and manages the origin whitelist. Every test runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from app import create_app
from dxc.manage.whitelist import FORM_MESSAGE
from dxc.storage import schema
from dxc.storage.clock import utcnow
from tests.e2e.cli_driver import CliSession, run_cli
from tests.e2e.test_auth_e2e import assert_no_secrets_logged, cli_folder
from tests.mailbox import Mailbox

OWNER = "owner@example.com"
BOB = "bob@example.com"
CI = "ci@example.com"


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"REDIS_URL": ""}  # the server delivers mail itself


def keys_of(folder: Path) -> dict:
    return json.loads((folder / "dexie-cloud.key").read_text())


def by_otp(folder: Path, mailbox: Mailbox, email: str, *args: str) -> tuple[int, str]:
    """A CLI command that logs in by e-mail first (connect, reconnect, key recovery)."""
    sent = len(mailbox.mails_to(email))
    session = CliSession(folder, *args)
    session.answer("Enter your email address", email)
    session.answer("Enter OTP", lambda: mailbox.code(email, sent + 1))
    return session.finish()


def printed_key(output: str) -> dict:
    """The key JSON that ``--stdout`` prints (other messages go to stderr)."""
    start = output.index("{")
    return json.JSONDecoder().raw_decode(output[start:])[0]


def table(output: str) -> dict[str, dict[str, str]]:
    """The rows that ``console.table`` printed, by client id (cells as printed)."""
    lines = [
        [cell.strip().strip("'") for cell in line.split("│")[1:-1]]
        for line in output.splitlines() if line.startswith("│")
    ]
    header, *rows = lines
    return {row["id"]: row for row in (dict(zip(header, cells, strict=True)) for cells in rows)}


def clients(server, folder: Path) -> dict[str, dict[str, str]]:
    return table(ok(server, run_cli(folder, "clients")))


def ok(server, result: tuple[int, str]) -> str:
    code, output = result
    assert code == 0, output + "\n--- server log ---\n" + server.log()[-4000:]
    return output


@pytest.fixture
def owner(server, mailbox, tmp_path) -> tuple[Path, str]:
    """The owner's folder after ``npx dexie-cloud create``, and the database URL."""
    folder = cli_folder(tmp_path, "owner")
    ok(server, by_otp(folder, mailbox, OWNER, "create", "--service", f"{server.url}/service"))
    return folder, json.loads((folder / "dexie-cloud.json").read_text())["dbUrl"]


def test_authorize_reconnect_unauthorize_and_revoke(server, mailbox, owner, tmp_path):
    folder, db_url = owner
    owner_id = keys_of(folder)[db_url]["clientId"]
    assert clients(server, folder)[owner_id]["email"] == OWNER

    authorized = ok(server, run_cli(folder, "authorize", BOB, "--scopes", "access_db,GLOBAL_READ"))
    assert f"Successfully authorized {BOB}" in authorized
    pending, = [row for row in clients(server, folder).values() if row["email"] == BOB]
    assert pending["emailVerified"] == "false"
    assert pending["scopes"] == "[ 'ACCESS_DB', 'GLOBAL_READ' ]"

    # Bob proves his e-mail and claims the pending client.
    laptop = cli_folder(tmp_path, "bob")
    reconnected = ok(server, by_otp(laptop, mailbox, BOB, "reconnect", db_url))
    assert f"Reconnected to {db_url}" in reconnected
    bob_id = keys_of(laptop)[db_url]["clientId"]
    assert bob_id == pending["id"]
    assert clients(server, folder)[bob_id]["emailVerified"] == "true"
    # His key works, but without MANAGE_DB he cannot list clients.
    refused = run_cli(laptop, "clients")
    assert refused[0] != 0 and "403" in refused[1]
    # A second reconnect finds nothing pending; a stranger is refused too.
    again = by_otp(cli_folder(tmp_path, "bob2"), mailbox, BOB, "reconnect", db_url)
    assert again[0] != 0 and "403" in again[1] and "pending" in again[1]
    stranger = by_otp(cli_folder(tmp_path, "eve"), mailbox, "eve@example.com", "connect", db_url)
    assert stranger[0] != 0 and "403" in stranger[1]

    # A service account gets its key at once, in a key file.
    ok(server, run_cli(folder, "authorize", CI, "--service-account", "--scopes", "GLOBAL_READ"))
    key_file, = folder.glob("service-account-*.key")
    ci_id = json.loads(key_file.read_text())[db_url]["clientId"]
    assert clients(server, folder)[ci_id]["serviceAccount"] == "true"

    unauthorized = ok(server, run_cli(folder, "unauthorize", BOB))
    assert f"Successfully deleted 1 clients that belonged to {BOB}" in unauthorized
    assert "Successfully revoked" in ok(server, run_cli(folder, "revoke", ci_id))
    assert "Client was not found" in ok(server, run_cli(folder, "revoke", ci_id))
    # The owner's client is the last one with every scope: it stays.
    last = run_cli(folder, "revoke", owner_id)
    assert last[0] != 0 and "409" in last[1]
    last = run_cli(folder, "unauthorize", OWNER)
    assert last[0] != 0 and "all scopes" in last[1]
    assert list(clients(server, folder)) == [owner_id]
    assert_no_secrets_logged(server, keys_of(folder)[db_url]["clientSecret"])


def test_rotate_and_recover_an_expired_key(server, mailbox, owner, tmp_path):
    folder, db_url = owner
    old = keys_of(folder)[db_url]
    backup = cli_folder(tmp_path, "backup")  # someone still holding the old key
    (backup / "dexie-cloud.json").write_text(json.dumps({"dbUrl": db_url}))
    (backup / "dexie-cloud.key").write_text(json.dumps({db_url: old}))

    rotated = ok(server, run_cli(folder, "rotate", "--days", "2"))
    assert "Rotated client key" in rotated and f"Old client: {old['clientId']}" in rotated
    new = keys_of(folder)[db_url]
    assert new["clientId"] != old["clientId"]
    ok(server, run_cli(folder, "clients"))
    ok(server, run_cli(backup, "clients"))  # still valid for two days

    # A service account rotated by the manager: new credentials printed as JSON.
    ci_id = printed_key(ok(server, run_cli(
        folder, "authorize", CI, "--service-account", "--stdout"
    )))[db_url]["clientId"]
    rotated_ci = printed_key(ok(server, run_cli(
        folder, "clients", "rotate", ci_id, "--stdout", "--days", "1"
    )))
    assert rotated_ci[db_url]["clientId"] != ci_id
    assert clients(server, folder)[ci_id]["expiresAt"] != "null"

    # Time passes: the old key expires, and the CLI recovers by e-mail.
    with server.services.control.begin() as connection:
        connection.execute(update(schema.api_clients).where(
            schema.api_clients.c.client_id == old["clientId"]
        ).values(expires=utcnow() - timedelta(minutes=1)))
    recovered = ok(server, by_otp(backup, mailbox, OWNER, "clients"))
    assert "Local API client key has expired" in recovered
    assert keys_of(backup)[db_url]["clientId"] not in (old["clientId"], new["clientId"])
    assert new["clientId"] in recovered


def test_whitelist(server, owner):
    folder, db_url = owner
    assert ok(server, run_cli(folder, "whitelist")).strip().endswith(db_url)
    assert "Added 1 origins" in ok(server, run_cli(folder, "whitelist", "https://App.Example.com/"))
    assert "Added 0 origins" in ok(server, run_cli(folder, "whitelist", "https://app.example.com"))
    code, output = run_cli(folder, "whitelist", "http://intranet.example")
    assert code != 0 and "400" in output and FORM_MESSAGE in output
    forced = ok(server, run_cli(folder, "whitelist", "http://intranet.example", "--force"))
    assert "Added 1 origins" in forced
    ok(server, run_cli(folder, "whitelist", "app:My Notes"))
    listed = ok(server, run_cli(folder, "whitelist")).splitlines()
    assert listed[-3:] == ["app:My Notes", "http://intranet.example", "https://app.example.com"]
    removed = ok(server, run_cli(folder, "whitelist", "https://app.example.com", "--delete"))
    assert "Removed 1 origins" in removed
    assert "Removed 0 origins" in ok(server, run_cli(folder, "whitelist", "-D", "https://x.com"))
    assert "https://app.example.com" not in ok(server, run_cli(folder, "whitelist"))


def test_the_files_of_flask_dxc_connect_drive_the_real_cli(server, owner, tmp_path):
    """``flask dxc connect`` writes dexie-cloud.json/.key for an existing database, as a
    sample app's configure script expects them: the real CLI works with them as they are."""
    _, db_url = owner
    folder = tmp_path / "sample-app"
    app = create_app(server.services.settings)
    with app.app_context():
        written = app.test_cli_runner().invoke(
            args=["dxc", "connect", db_url, "--dir", str(folder)]
        )
    assert written.exit_code == 0, written.output
    assert "Added 1 origins" in ok(server, run_cli(folder, "whitelist", "http://localhost:5173"))
    assert "http://localhost:5173" in ok(server, run_cli(folder, "whitelist"))
