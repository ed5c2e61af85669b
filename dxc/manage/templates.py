"""``dexie-cloud templates pull|push|reset|test-send``: a database's templates.

A database starts with the built-in templates (:mod:`dxc.mail.handlebars`);
``push`` stores the ones that differ, ``reset`` forgets them all. A push is
checked as a whole before anything is stored: one broken template refuses
all of it.
"""

from __future__ import annotations

import re
from typing import Any

from dxc.auth.otp import is_email
from dxc.auth.tokens import AccessClaims
from dxc.errors import Invalid
from dxc.mail import render
from dxc.mail.handlebars import (
    MAX_TEMPLATE_CHARS,
    TemplateError,
    check_template,
    default_templates,
)
from dxc.services import Services
from dxc.storage import credentials
from dxc.storage import templates as template_store

#: The most entries one push may list (the CLI sends every file under ``dexie-cloud/``).
MAX_PUSHED_FILES = 1000
_DRIVE = re.compile(r"^[A-Za-z]:")


def current_templates(services: Services, db_id: str) -> dict[str, str]:
    """Every template path of ``db_id`` with its content, customised or default."""
    with services.control.connect() as connection:
        connection.execution_options(read_only=True)  # no write lock on SQLite
        custom = template_store.custom_templates(connection, db_id)
    return {path: custom.get(path, content) for path, content in default_templates().items()}


def pull(services: Services, db_id: str) -> list[dict[str, str]]:
    return [
        {"path": path, "content": content}
        for path, content in current_templates(services, db_id).items()
    ]


def push(services: Services, db_id: str, body: Any) -> int:
    """Store the pushed known templates that changed; how many did."""
    pushed = _pushed_templates(body)
    defaults = default_templates()
    known = {path: content for path, content in pushed.items() if path in defaults}
    for path, content in known.items():
        if len(content) > MAX_TEMPLATE_CHARS:
            raise Invalid(f"{path} is longer than {MAX_TEMPLATE_CHARS} characters")
        if "\x00" in content:  # text, not binary (PostgreSQL cannot store NUL in text)
            raise Invalid(f"{path} contains a NUL character")
        try:
            check_template(path, content)
        except TemplateError as error:
            raise Invalid(f"{path} {error}") from None
    with services.control.begin() as connection:
        custom = template_store.custom_templates(connection, db_id)
        changed = {
            path: content for path, content in known.items()
            if content != custom.get(path, defaults[path])
        }
        template_store.replace_templates(
            connection,
            db_id,
            {path: content for path, content in changed.items() if content != defaults[path]},
            [path for path, content in changed.items() if content == defaults[path]],
        )
    return len(changed)


def reset(services: Services, db_id: str) -> int:
    """Back to the built-in templates; how many were customised."""
    with services.control.begin() as connection:
        return template_store.delete_templates(connection, db_id)


def send_test_mail(services: Services, caller: AccessClaims, body: Any) -> str:
    """Render the posted templates with the posted variables and mail them; the receiver."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    sources = [body.get(name) for name in ("subjectStr", "bodyTxtStr", "bodyHtmlStr")]
    if not all(isinstance(source, str) for source in sources):
        raise Invalid("subjectStr, bodyTxtStr and bodyHtmlStr must be strings")
    variables = body.get("vars", {})
    if not isinstance(variables, dict):
        raise Invalid("vars must be a JSON object")
    receiver = body.get("to") or _owner_email(services, caller)
    if not isinstance(receiver, str) or not is_email(receiver.strip()):
        raise Invalid(
            "there is no e-mail address to send to: pass --to <email>"
            if receiver is None else "to must be an e-mail address"
        )
    channel = services.mailer.channel()
    if channel is None:
        raise Invalid(
            "this server has no e-mail channel to send with: its administrator must run "
            "`flask dxc init-email-channel URL`"
        )
    try:
        message = render("test-send", receiver.strip(), variables, sources)
    except TemplateError as error:
        raise Invalid(f"the template {error}") from None
    services.mailer.send(channel, message)
    return message.to


def _owner_email(services: Services, caller: AccessClaims) -> str | None:
    """The caller's e-mail: its token's, or for an API client, its owner's."""
    if caller.email:
        return caller.email
    if caller.user_type != "client":
        return None
    with services.control.connect() as connection:
        connection.execution_options(read_only=True)  # no write lock on SQLite
        client = credentials.get_api_client(connection, caller.sub)
    return client.email if client else None


def _pushed_templates(body: Any) -> dict[str, str]:
    """``{path: content}`` of a push body; Invalid for anything malformed or unsafe."""
    if not isinstance(body, list):
        raise Invalid("the body must be a JSON array of {path, content}")
    if len(body) > MAX_PUSHED_FILES:
        raise Invalid(f"a push may hold at most {MAX_PUSHED_FILES} files")
    pushed: dict[str, str] = {}
    for entry in body:
        if not isinstance(entry, dict):
            raise Invalid("each entry must be an object {path, content}")
        path, content = entry.get("path"), entry.get("content")
        if not isinstance(path, str) or not path:
            raise Invalid("each entry needs a non-empty string path")
        if not isinstance(content, str):
            raise Invalid(f"the content of {path} must be a string")
        if path.startswith("/") or "\\" in path or _DRIVE.match(path) or ".." in path.split("/"):
            raise Invalid(f"{path} must be a plain relative path (no '..', no leading '/')")
        if path in pushed:
            raise Invalid(f"{path} is listed twice")
        pushed[path] = content
    return pushed

