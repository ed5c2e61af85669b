"""Copying a source's origin whitelist, e-mail templates and e-mail login switch here.

They are settings of the database kept outside its rows: they take no
revision, so no checkpoint says when they changed. The copy reads them
whole through the endpoints the ``dexie-cloud`` CLI and the login dialog
use (``whitelist``, ``templates pull``, ``auth-providers``) and makes this
database's equal to them: when a job starts, every :data:`PERIOD_SECONDS`
while it follows the source, and once more before the copy takes over (the
source is frozen then, and from the forwarding on its CLI's changes reach
this installation).

OAuth providers are not copied: their client secrets never leave an
installation. :func:`missing_providers` names those to add here by hand.
"""

from __future__ import annotations

from dxc.errors import Invalid
from dxc.manage import templates, whitelist
from dxc.protocol import ProtocolError
from dxc.replication.source import Source
from dxc.services import Services
from dxc.storage import oauth as oauth_store

#: How often a job that follows its source copies them again.
PERIOD_SECONDS = 60


def copy_settings(services: Services, db_id: str, source: Source) -> None:
    """Make the whitelist, the templates and the e-mail login switch of ``db_id``
    those of the source."""
    try:
        whitelist.replace_origins(services, db_id, source.whitelist())
    except Invalid as error:
        raise ProtocolError(f"the source's whitelist: {error}") from None
    try:
        templates.push(services, db_id, source.templates())
    except Invalid as error:
        raise ProtocolError(f"the source's templates: {error}") from None
    otp_enabled = source.sign_in_options().get("otpEnabled")
    if not isinstance(otp_enabled, bool):
        raise ProtocolError("the source's /auth-providers gave no otpEnabled")
    with services.control.begin() as connection:
        if oauth_store.otp_enabled(connection, db_id) != otp_enabled:
            oauth_store.set_otp_enabled(connection, db_id, otp_enabled)


def missing_providers(services: Services, db_id: str, source: Source) -> list[str]:
    """The sign-in providers the source offers and ``db_id`` does not (by name)."""
    offered = source.sign_in_options().get("providers")
    if not isinstance(offered, list):
        raise ProtocolError("the source's /auth-providers gave no providers")
    with services.control.connect() as connection:
        here = {provider.name for provider in oauth_store.list_providers(connection, db_id)}
    names = {entry.get("name") for entry in offered if isinstance(entry, dict)}
    return sorted(name for name in names if isinstance(name, str) and name not in here)
