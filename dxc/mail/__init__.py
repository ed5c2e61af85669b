"""Outgoing e-mail: templates rendered here, delivered by the installation's web-hook.

Each database renders its mails from its own templates (customised with
``dexie-cloud templates push``, else the defaults of :mod:`dxc.mail.handlebars`).

The web-hook receives each mail as JSON (see ``docs/email-channel.md``),
signed with HMAC-SHA256 over the exact body bytes, and does the actual
sending (SMTP, an e-mail API, a test inbox). Delivery runs as a job, so a
slow or failing web-hook never holds up a request and is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from cryptography.fernet import InvalidToken
from sqlalchemy import Engine

from dxc import metrics
from dxc.jobs import Jobs
from dxc.mail.handlebars import (
    EMAIL_KINDS,
    EMAIL_PARTS,
    TemplateError,
    default_templates,
    email_path,
    operator_templates,
    render_template,
)
from dxc.mail.webhook import post_webhook
from dxc.secret_keys import Keyring
from dxc.storage import email_channel
from dxc.storage import templates as template_store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Dxc-Signature"
#: The purpose of the key that seals the channel's signing secret.
SEALING_PURPOSE = "email-channel"


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


def render(
    template: str, to: str, variables: Mapping[str, Any], sources: Sequence[str]
) -> Message:
    """The mail for ``to`` from the Handlebars ``sources`` (subject, text body, HTML body).

    The subject becomes one line; :class:`TemplateError` if a source is broken.
    """
    subject, text, html = (render_template(source, variables) for source in sources)
    return Message(
        to=to,
        subject=" ".join(subject.split()),
        text=text.strip() + "\n",
        html=html.strip() + "\n",
        template=template,
        variables=dict(variables),
    )


def _split(url: str | None) -> SplitResult | None:
    """``url`` split, or None if there is none or it cannot be (an Origin is the caller's)."""
    try:
        return urlsplit(url) if url else None
    except ValueError:
        return None


def origin_name(origin: str | None, fallback_url: str) -> str:
    """What mails call the app: the Origin's host, else the host of ``fallback_url``."""
    parts = _split(origin)
    return (parts and parts.netloc) or urlsplit(fallback_url).netloc


def is_web_origin(origin: str | None) -> bool:
    """True for a web page (an http(s) Origin); an installed app has another scheme."""
    parts = _split(origin)
    return parts is not None and parts.scheme in ("http", "https")


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Mailer:
    def __init__(self, control: Engine, keyring: Keyring, jobs: Jobs) -> None:
        self.control = control
        self.jobs = jobs
        self._fernet = keyring.fernet(SEALING_PURPOSE)

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
                "the e-mail channel's secret cannot be decrypted (was DXC_SECRET changed? list "
                "the old one in DXC_OLD_SECRETS); else run `flask dxc init-email-channel` again"
            )
            return None
        return Channel(stored.url, secret)

    def compose(
        self, db_id: str, template: str, to: str, variables: Mapping[str, Any]
    ) -> Message:
        """Mail ``template`` (``otp`` or ``invite``) for ``to`` from ``db_id``'s templates,
        or the built-in operator mail ``template`` (``delete-db``).

        A customised template that fails with these variables is logged and the
        built-in one is used, so that a login or an invitation never fails for it.
        """
        if template not in EMAIL_KINDS:
            return render(template, to, variables, operator_templates(template))
        paths = [email_path(template, part) for part in EMAIL_PARTS]
        with self.control.connect() as connection:
            connection.execution_options(read_only=True)  # no write lock on SQLite
            custom = template_store.custom_templates(connection, db_id)
        defaults = default_templates()
        sources = tuple(custom.get(path, defaults[path]) for path in paths)
        if any(path in custom for path in paths):
            try:
                return render(template, to, variables, sources)
            except TemplateError as error:
                log.error("customised %s templates of %s fail (%s): using the defaults",
                          template, db_id, error)
        return render(template, to, variables, tuple(defaults[path] for path in paths))

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
        metrics.MAILS_QUEUED.labels(message.template).inc()
