"""``dexie-cloud.json`` and ``dexie-cloud.key``: the files the npm CLI reads.

``dexie-cloud.json`` holds ``{"serviceUrl", "dbUrl"}``; ``dexie-cloud.key``
maps each database URL to ``{"clientId", "clientSecret"}`` and is kept
readable by its owner only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dxc.manage.databases import DatabaseKey


class CliFiles:
    def __init__(self, folder: Path) -> None:
        self.config_path = folder / "dexie-cloud.json"
        self.key_path = folder / "dexie-cloud.key"

    def db_url(self) -> str | None:
        return _read(self.config_path).get("dbUrl")

    def add(self, service_url: str, key: DatabaseKey) -> None:
        """Make ``key``'s database the current one and remember its credentials."""
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        config = _read(self.config_path)
        config.update(serviceUrl=service_url, dbUrl=key.url)
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")
        keys = _read(self.key_path)
        keys[key.url] = {"clientId": key.client_id, "clientSecret": key.client_secret}
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(json.dumps(keys, indent=2) + "\n")
        os.chmod(self.key_path, 0o600)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    return json.loads(path.read_text())
