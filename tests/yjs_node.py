"""The real yjs, in Node (tests/e2e/node/yupdates.mjs): updates it makes, and the
document it reads from updates."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

E2E = Path(__file__).resolve().parent / "e2e"


def _node(*args: str, stdin: str | None = None) -> Any:
    binary = shutil.which("node")
    if binary is None or not (E2E / "node_modules" / "yjs").is_dir():
        pytest.skip("needs Node and tests/e2e/node_modules (npm ci in tests/e2e)")
    done = subprocess.run(
        [binary, "node/yupdates.mjs", *args], cwd=E2E, input=stdin,
        capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(done.stdout)


def generate(seed: int) -> dict[str, Any]:
    """Seeded random edits of three docs: ``updates`` ({v2, v1, v1v2} base64 each, in
    the order they were made), their merged ``state`` and the document's ``content``."""
    return _node("generate", str(seed))


def content_of(updates: list[bytes]) -> dict[str, Any]:
    """The content of a new Y.Doc after ``Y.applyUpdateV2`` of each of ``updates``."""
    return _node("apply", stdin=json.dumps([base64.b64encode(u).decode() for u in updates]))


def v2_updates(made: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(update["v2"]) for update in made["updates"]]
