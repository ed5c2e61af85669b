"""Copying a source's origin whitelist and e-mail templates here.

They are settings of the database kept outside its rows: they take no
revision, so no checkpoint says when they changed. The copy reads them
whole through the endpoints the ``dexie-cloud`` CLI uses (``whitelist``,
``templates pull``) and makes this database's equal to them: when a job
starts, every :data:`PERIOD_SECONDS` while it follows the source, and once
more before the copy takes over (the source is frozen then, and from the
forwarding on its CLI's changes reach this installation).
"""

from __future__ import annotations

from dxc.errors import Invalid
from dxc.manage import templates, whitelist
from dxc.protocol import ProtocolError
from dxc.replication.source import Source
from dxc.services import Services

#: How often a job that follows its source copies them again.
PERIOD_SECONDS = 60


def copy_settings(services: Services, db_id: str, source: Source) -> None:
    """Make the whitelist and the templates of ``db_id`` those of the source."""
    try:
        whitelist.replace_origins(services, db_id, source.whitelist())
    except Invalid as error:
        raise ProtocolError(f"the source's whitelist: {error}") from None
    try:
        templates.push(services, db_id, source.templates())
    except Invalid as error:
        raise ProtocolError(f"the source's templates: {error}") from None
