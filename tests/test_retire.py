"""``delete-db``'s confirmation rules, in-process (the whole command: test_retire_server.py)."""

from __future__ import annotations

import pytest

from dxc.auth.otp import Caller
from dxc.errors import Conflict, Forbidden
from dxc.manage import databases, retire
from dxc.storage.templates import replace_templates

OWNER = "owner@example.com"


def test_the_owner_confirms_and_nobody_else(services):
    created = databases.create_database(services, owner_email=OWNER)
    assert retire.owner_email(services, created.db_id, None) == OWNER
    assert retire.owner_email(services, created.db_id, "Owner@Example.com") == OWNER
    with pytest.raises(Forbidden):
        retire.owner_email(services, created.db_id, "someone@example.com")
    anonymous = databases.create_database(services)
    with pytest.raises(Conflict, match="no owner e-mail"):
        retire.owner_email(services, anonymous.db_id, None)


def test_no_code_without_an_e_mail_channel(services):
    created = databases.create_database(services, owner_email=OWNER)
    with pytest.raises(Conflict, match="e-mail channel"):
        retire.request_confirmation(services, created.db_id, OWNER)


def test_a_login_code_does_not_confirm_a_deletion(mail_app, mailbox):
    services = mail_app.extensions["dxc"]
    created = databases.create_database(services, owner_email=OWNER)
    otp_id = services.tokens.otp.request(created.db_id, OWNER, (), "login", Caller())
    with pytest.raises(Forbidden, match="does not confirm a deletion"):
        retire.confirm(services, created.db_id, otp_id, mailbox.code(OWNER), OWNER)

    otp_id = retire.request_confirmation(services, created.db_id, OWNER)
    with pytest.raises(Forbidden, match="wrong confirmation code"):
        retire.confirm(services, created.db_id, otp_id, "AAAAAAAA", OWNER)
    retire.confirm(services, created.db_id, otp_id, mailbox.code(OWNER, count=2), OWNER)
    with pytest.raises(Forbidden):  # used once
        retire.confirm(services, created.db_id, otp_id, mailbox.code(OWNER, count=2), OWNER)


def test_the_confirmation_mail_speaks_of_the_deletion_not_of_a_login(mail_app, mailbox):
    """Built-in wording: a database's customised OTP mail is for its app's users."""
    services = mail_app.extensions["dxc"]
    created = databases.create_database(services, owner_email=OWNER)
    with services.control.begin() as connection:
        replace_templates(connection, created.db_id, {
            "email-templates/otp-subject.handlebars": "Log in to the app",
            "email-templates/otp-body-txt.handlebars": "Log in: OTP: {{{otp}}}",
        }, ())
    retire.request_confirmation(services, created.db_id, OWNER)
    mail = mailbox.wait_for_mail(OWNER)
    url = services.settings.database_url_for(created.db_id)
    assert mail["subject"] == f"Confirm the deletion of {url}"
    assert "DELETE this database" in mail["text"] and "log in" not in mail["text"].lower()
    assert "delete this database" in mail["html"] and mailbox.code(OWNER) in mail["html"]
