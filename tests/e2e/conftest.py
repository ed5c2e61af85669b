"""Fixtures of the end-to-end tests (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.mailbox import Mailbox


@pytest.fixture
def mailbox(server, mailbox: Mailbox) -> Mailbox:
    """The mailbox, as the e-mail channel of the running ``server``."""
    server.services.mailer.configure(mailbox.url, mailbox.secret)
    return mailbox
