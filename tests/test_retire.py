"""``delete-db``'s confirmation rules, in-process (the whole command: test_retire_server.py)."""

from __future__ import annotations

import pytest

from dxc.auth.otp import Caller
from dxc.errors import Conflict, Forbidden
from dxc.manage import databases, retire

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
