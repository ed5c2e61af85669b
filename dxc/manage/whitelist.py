"""``npx dexie-cloud whitelist`` and ``flask dxc whitelist``: the browser origins a
database allows (the rule that uses them: :mod:`dxc.access.origins`)."""

from __future__ import annotations

import re
from typing import Any

from dxc.access.origins import normalise
from dxc.errors import Invalid
from dxc.services import Services
from dxc.storage import origins as origin_store

FORM_MESSAGE = (
    "Given origin should be of the form: https://hostname, http://localhost:<port>, "
    "capacitor://..., ionic://..., chrome-extension://... or app:<App name>. "
    "Use the --force flag to skip this check and add a custom origin."
)
_VALID = re.compile(
    r"https://[a-z0-9-]+(\.[a-z0-9-]+)*(:\d{1,5})?"
    r"|http://localhost(:\d{1,5})?"
    r"|(capacitor|ionic|chrome-extension)://\S+"
    r"|app:\S.*"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ORIGIN_CHARS = 512


def whitelist(services: Services, db_id: str, body: Any) -> list[str] | int:
    """``POST /<db>/whitelist``: list (no origin), add or delete; the list, or how many
    origins were added/removed."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object {origin?, delete?, force?}")
    origin, remove, force = body.get("origin"), _flag(body, "delete"), _flag(body, "force")
    if origin is None:
        if remove:
            raise Invalid("give the origin to delete")
        return list_origins(services, db_id)
    if not isinstance(origin, str):
        raise Invalid("origin must be a non-empty string")
    if remove:
        return delete_origin(services, db_id, origin)
    return add_origin(services, db_id, origin, force)


def list_origins(services: Services, db_id: str) -> list[str]:
    with services.control.connect() as connection:
        connection.execution_options(read_only=True)
        return origin_store.list_origins(connection, db_id)


def add_origin(services: Services, db_id: str, origin: str, force: bool = False) -> int:
    """Whitelist ``origin`` (of a known form unless ``force``); 1 if it is new, else 0."""
    origin = _checked(origin)
    if not force and not _VALID.fullmatch(origin):
        raise Invalid(FORM_MESSAGE)
    with services.control.begin() as connection:
        return origin_store.add_origin(connection, db_id, origin)


def delete_origin(services: Services, db_id: str, origin: str) -> int:
    """Remove ``origin`` from the whitelist; 1 if it was there, else 0."""
    origin = _checked(origin)
    with services.control.begin() as connection:
        return origin_store.delete_origin(connection, db_id, origin)


def replace_origins(services: Services, db_id: str, wanted: Any) -> None:
    """Make the whitelist exactly ``wanted`` (a list of origins): a replica copies its
    source's, which checked their form when they were added."""
    if not isinstance(wanted, list) or not all(isinstance(o, str) for o in wanted):
        raise Invalid("the whitelist must be a list of origins")
    origins = {_checked(origin) for origin in wanted}
    with services.control.begin() as connection:
        here = set(origin_store.list_origins(connection, db_id))
        for origin in sorted(origins - here):
            origin_store.add_origin(connection, db_id, origin)
        for origin in sorted(here - origins):
            origin_store.delete_origin(connection, db_id, origin)


def _checked(origin: str) -> str:
    if not origin.strip():
        raise Invalid("origin must be a non-empty string")
    origin = normalise(origin)
    if len(origin) > MAX_ORIGIN_CHARS or _CONTROL.search(origin):
        raise Invalid(f"origin must be at most {MAX_ORIGIN_CHARS} printable characters")
    return origin


def _flag(body: dict[str, Any], name: str) -> bool:
    """The CLI sends the string ``'true'``; its type declares a boolean: accept both."""
    value = body.get(name)
    if value in (None, False, "false", ""):
        return False
    if value is True or value == "true":
        return True
    raise Invalid(f"{name} must be true or false")
