"""A database's customised e-mail and web templates (control table ``templates``).

Only customised templates have a row; every other path is the built-in
default (:mod:`dxc.mail.handlebars`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, delete, insert, select

from dxc.storage import schema
from dxc.storage.clock import utcnow


def custom_templates(connection: Connection, db_id: str) -> dict[str, str]:
    """``{path: content}`` of the templates ``db_id`` has customised."""
    table = schema.templates
    rows = connection.execute(
        select(table.c.path, table.c.content).where(table.c.db_id == db_id)
    )
    return {row.path: row.content for row in rows}


def replace_templates(
    connection: Connection, db_id: str, changed: Mapping[str, str], restored: Iterable[str]
) -> None:
    """Store the ``changed`` templates and drop the ``restored`` ones (back to default)."""
    table = schema.templates
    gone = {*changed, *restored}
    if gone:
        connection.execute(delete(table).where(table.c.db_id == db_id, table.c.path.in_(gone)))
    if changed:
        now = utcnow()
        connection.execute(insert(table), [
            {"db_id": db_id, "path": path, "content": content, "updated": now}
            for path, content in changed.items()
        ])


def delete_templates(connection: Connection, db_id: str) -> int:
    """Forget every customised template of ``db_id``; how many there were."""
    table = schema.templates
    return connection.execute(delete(table).where(table.c.db_id == db_id)).rowcount
