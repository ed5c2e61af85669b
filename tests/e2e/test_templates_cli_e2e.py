"""``dexie-cloud templates pull|push|test-send|reset`` with the real CLI, then a real login.

The CLI works on the files under ``dexie-cloud/`` next to its
``dexie-cloud.json``; mails go through the e-mail channel to a web-hook
receiver in the test (``tests/mailbox.py``). The real ``dexie-cloud-addon``
then logs in by e-mail and receives a mail rendered from the pushed template.
Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dxc.cli.files import CliFiles
from dxc.mail.handlebars import TEMPLATE_PATHS
from dxc.manage import databases
from dxc.manage.importer import import_document
from tests.e2e.cli_driver import run_cli
from tests.e2e.runner import ScenarioError, run_scenario

OWNER = "owner@example.com"
EMAIL = "ann@example.com"
BOB = "bob@example.com"
SUBJECT = "email-templates/otp-subject.handlebars"
INVITE_SUBJECT = "email-templates/invite-subject.handlebars"


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"REDIS_URL": ""}  # the server delivers mail itself (no RQ worker runs here)


def test_cli_templates_round_trip_and_an_addon_login_gets_the_pushed_mail(
    server, mailbox, tmp_path: Path
):
    created = databases.create_database(server.services, owner_email=OWNER)
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "package.json").write_text("{}\n")  # the CLI keeps its files next to it
    CliFiles(folder).add(f"{server.url}/service", created)

    def cli(*args: str) -> str:
        code, output = run_cli(folder, "templates", *args)
        assert code == 0, output + server.log()[-4000:]
        return output

    cli("pull")
    local = folder / "dexie-cloud"
    assert sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file()) == sorted(
        TEMPLATE_PATHS
    )
    subject = local / SUBJECT
    assert subject.read_text().startswith("{{!--")
    subject.write_text(
        subject.read_text().replace(
            "Your One-Time Password for {{{originName}}}: {{{otp}}}",
            "{{{otp}}} opens {{{originName}}} (custom)",
        )
    )
    (local / "notes.txt").write_text("a stray file the server ignores\n")

    assert "Number of updated templates: 1" in cli("push")
    assert "Number of updated templates: 0" in cli("push")

    output = cli("test-send", "otp")
    assert f"to {OWNER}" in output
    assert mailbox.wait_for_mail(OWNER)["subject"] == "ABCD1234 opens myapp.company.com (custom)"
    output = cli("test-send", "invite", "--to", BOB)
    assert f"to {BOB}" in output
    invite = mailbox.wait_for_mail(BOB)
    assert invite["subject"] == 'Jane Doe wants to share "My Todo List" with you'

    # A broken template is refused with its path, and nothing changes.
    good = subject.read_text()
    subject.write_text("{{#if otp}}{{/each}}")
    code, output = run_cli(folder, "templates", "push")
    assert code != 0 and SUBJECT in output
    subject.write_text(good)

    # The real addon logs in by e-mail: its mail comes from the pushed template.
    try:
        result = run_scenario(
            "otp_login", databaseUrl=created.url, email=EMAIL, mailbox=mailbox.url
        )
    except ScenarioError as error:
        raise ScenarioError(f"{error}\n--- server log ---\n{server.log()[-6000:]}") from None
    assert result.get("loginError") is None, result
    assert result["userId"] == EMAIL
    login_mail = mailbox.wait_for_mail(EMAIL)
    # Node sends no Origin: the mail names the database URL's host.
    host = urlsplit(server.url).netloc
    assert login_mail["variables"]["originName"] == host
    assert login_mail["subject"] == f"{mailbox.code(EMAIL)} opens {host} (custom)"

    output = cli("reset")
    assert "Number of custom templates that needed reset: 1" in output
    cli("pull")
    assert subject.read_text().endswith("Your One-Time Password for {{{originName}}}: {{{otp}}}\n")
    assert "Traceback" not in server.log()


def test_an_addon_invitation_is_mailed_from_the_pushed_template(server, mailbox, tmp_path: Path):
    alice, bob, carol = "alice@demo.local", "bob@demo.local", "carol@demo.local"
    created = databases.create_database(server.services, owner_email=OWNER)
    import_document(server.services, created.db_id, {"demoUsers": {alice: {}, bob: {}, carol: {}}})
    folder = tmp_path / "app"
    (folder / "dexie-cloud" / "email-templates").mkdir(parents=True)
    (folder / "package.json").write_text("{}\n")
    CliFiles(folder).add(f"{server.url}/service", created)
    (folder / "dexie-cloud" / INVITE_SUBJECT).write_text(
        "{{{invitor.name}}} shares {{{realm.name}}} ({{{realm.represents}}}) "
        "with {{{recepient.firstName}}}\n"
    )
    code, output = run_cli(folder, "templates", "push")
    assert code == 0 and "Number of updated templates: 1" in output, output

    try:
        result = run_scenario(
            "sharing", databaseUrl=created.url, alice=alice, bob=bob, carol=carol
        )
    except ScenarioError as error:
        raise ScenarioError(f"{error}\n--- server log ---\n{server.log()[-6000:]}") from None
    assert result["invite"]["realmName"] == "Groceries"
    mail = mailbox.wait_for_mail(bob)
    variables = mail["variables"]
    assert variables["invitor"]["email"] == alice
    assert mail["subject"] == (
        f"{variables['invitor']['name']} shares Groceries (a shopping list) with Bob"
    )
    # Node sends no Origin: the app is the database URL, and so are the accept/reject links.
    assert variables["app"] == {
        "name": urlsplit(server.url).netloc, "url": created.url, "isWebPage": False,
    }
    assert variables["acceptUrl"] == variables["rejectUrl"] == created.url
    assert "Traceback" not in server.log()
