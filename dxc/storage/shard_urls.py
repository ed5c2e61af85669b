"""Shard connection strings at rest: sealed with a key derived from ``DXC_SECRET``.

The control database keeps two forms of a shard's URL: ``shards.url``, the
URL with its password masked (what listings, logs and an operator's
``SELECT`` see, and what tells two shards apart), and ``shards.sealed_url``,
the whole URL encrypted (Fernet). Rows written before sealing existed have
the clear URL in ``url`` and no ``sealed_url``; they are read as they are and
sealed by ``flask dxc migrate`` (:func:`seal_clear_urls`).
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from sqlalchemy import URL, Connection, select, update
from sqlalchemy.engine import make_url

from dxc.secret_keys import Keyring
from dxc.storage import schema

SEALING_PURPOSE = "shard-url"
#: Query parameters of a libpq URL that carry a secret, masked like the password.
SECRET_PARAMETERS = ("password", "sslpassword")
MASK = "***"


class UnreadableShardUrl(RuntimeError):
    """A sealed URL that this ``DXC_SECRET`` cannot open."""


def masked(url: URL | str) -> str:
    """``url`` with its password (and secret query parameters) replaced by ``***``."""
    url = make_url(url)
    hidden = {key: MASK for key in SECRET_PARAMETERS if key in url.query}
    rendered = url.update_query_dict(hidden).render_as_string(hide_password=True)
    return rendered.replace("%2A%2A%2A", MASK)  # the query's mask, escaped by the rendering


class UrlSeal:
    """Seals shard URLs with the current ``DXC_SECRET``, opens them with any accepted one."""

    def __init__(self, keyring: Keyring) -> None:
        self._fernet = keyring.fernet(SEALING_PURPOSE)

    def columns(self, url: URL) -> dict[str, str]:
        """The ``url`` and ``sealed_url`` values that store ``url``."""
        clear = url.render_as_string(hide_password=False)
        return {"url": masked(url), "sealed_url": self._fernet.encrypt(clear.encode()).decode()}

    def open(self, url: str, sealed_url: str | None) -> str:
        """The usable URL of a ``shards`` row: the sealed one opened, else (a row
        from before sealing) the clear one."""
        if sealed_url is None:
            return url
        try:
            return self._fernet.decrypt(sealed_url.encode()).decode()
        except InvalidToken:
            raise UnreadableShardUrl(
                f"the connection string of shard {masked(url)} cannot be decrypted (was "
                "DXC_SECRET changed? list the old one in DXC_OLD_SECRETS); else give it again "
                "with `flask dxc update-shard NAME --url …`"
            ) from None


def seal_clear_urls(connection: Connection, seal: UrlSeal) -> int:
    """Seal the URLs still stored in clear; how many there were."""
    shards = schema.shards
    rows = connection.execute(
        select(shards.c.id, shards.c.url).where(
            shards.c.url.is_not(None), shards.c.sealed_url.is_(None)
        )
    ).all()
    for shard_id, url in rows:
        connection.execute(
            update(shards).where(shards.c.id == shard_id).values(**seal.columns(make_url(url)))
        )
    return len(rows)
