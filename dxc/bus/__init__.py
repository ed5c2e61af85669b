"""The bus: every commit's news reaches every worker (docs/live-changes.md).

Writers commit through ``commits.committing()``, which publishes a
:class:`~dxc.bus.base.Change` with or after the commit; the live sockets of
every worker (``dxc.realtime``) subscribe. Below both ``dxc.sync`` (which
writes) and ``dxc.realtime`` (which reads what a socket is missing), so
neither imports the other's publishing side.
"""

from __future__ import annotations

from sqlalchemy import Engine

from dxc.bus.base import Bus
from dxc.bus.local_bus import LocalBus, folder_for
from dxc.bus.polling_bus import PollingBus
from dxc.bus.postgres_bus import PostgresBus
from dxc.bus.redis_bus import RedisBus
from dxc.config import Settings
from dxc.storage.router import ShardRouter


def make_bus(settings: Settings, control: Engine, router: ShardRouter) -> Bus:
    """Redis if configured, else what the control database offers (see ``bus``)."""
    if settings.redis_url:
        return RedisBus(settings.redis_url)
    if control.dialect.name == "postgresql":
        return PostgresBus(control, router)
    path = control.url.database
    if path and path != ":memory:" and not path.startswith("file::memory:"):
        return LocalBus(router, folder_for(path))
    return PollingBus(router)  # a database in memory serves one process anyway
