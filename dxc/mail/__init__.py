"""Outgoing e-mail: templates rendered here, delivered by the installation's web-hook.

The web-hook receives each mail as JSON (see ``docs/email-channel.md``),
signed with HMAC-SHA256 over the exact body bytes, and does the actual
sending (SMTP, an e-mail API, a test inbox). Delivery runs as a job, so a
slow or failing web-hook never holds up a request and is retried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Engine

from dxc.auth.keys import derive_key
from dxc.jobs import Jobs
from dxc.storage import email_channel
from workers.jobs import post_webhook

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Dxc-Signature"
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str
    html: str
    template: str
    variables: dict[str, Any]


@dataclass(frozen=True)
class Channel:
    url: str
    secret: str = field(repr=False)


def render(template: str, to: str, variables: dict[str, Any]) -> Message:
    """Mail ``template`` (``<template>-subject.txt``, ``-body.txt``, ``-body.html``) for ``to``."""
    def part(name: str) -> str:
        return _templates.get_template(f"{template}-{name}").render(variables)

    return Message(
        to=to,
        subject=part("subject.txt").strip(),
        text=part("body.txt"),
        html=part("body.html"),
        template=template,
        variables=variables,
    )


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Mailer:
    def __init__(self, control: Engine, secret: str, jobs: Jobs) -> None:
        self.control = control
        self.jobs = jobs
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret, "email-channel")))

    def configure(self, url: str, secret: str) -> None:
        """Send mail to the web-hook ``url``, signing with ``secret`` (stored encrypted)."""
        with self.control.begin() as connection:
            email_channel.set_channel(
                connection, url, self._fernet.encrypt(secret.encode()).decode()
            )

    def channel(self) -> Channel | None:
        """The configured channel; None without one (or if it cannot be decrypted)."""
        with self.control.connect() as connection:
            stored = email_channel.get_channel(connection)
        if stored is None:
            return None
        try:
            secret = self._fernet.decrypt(stored.sealed_secret.encode()).decode()
        except InvalidToken:
            log.error(
                "the e-mail channel's secret cannot be decrypted (was DXC_SECRET changed?); "
                "run `flask dxc init-email-channel` again"
            )
            return None
        return Channel(stored.url, secret)

    def send(self, channel: Channel, message: Message) -> None:
        """Queue ``message`` for delivery to ``channel``."""
        body = json.dumps({
            "id": uuid.uuid4().hex,
            "to": message.to,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "template": message.template,
            "variables": message.variables,
        }).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(channel.secret, body),
        }
        self.jobs.enqueue(post_webhook, channel.url, body, headers)
