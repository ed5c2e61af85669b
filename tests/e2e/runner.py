"""Runs the Node scenarios (``node/scenarios/<name>.mjs``) that drive the real client."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

E2E = Path(__file__).resolve().parent
SCENARIOS = E2E / "node" / "scenarios"
TIMEOUT = 60


class ScenarioError(AssertionError):
    pass


def run_scenario(name: str, timeout: float = TIMEOUT, **args: Any) -> dict[str, Any]:
    """Run scenario ``name`` with ``args`` (as one JSON argument); return its JSON result.

    Skips the test when Node or the installed npm packages are missing.
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the real-client tests need Node 20+")
    if not (E2E / "node_modules" / "dexie-cloud-addon").is_dir():
        pytest.skip("tests/e2e/node_modules is missing: run `npm ci` in tests/e2e")
    command = [node, str(SCENARIOS / f"{name}.mjs"), json.dumps(args)]
    try:
        done = subprocess.run(command, cwd=E2E, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        raise ScenarioError(
            f"scenario {name} timed out after {timeout} s"
            + _outputs(_text(expired.stdout), _text(expired.stderr))
        ) from None
    lines = [line for line in done.stdout.split("\n") if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise ScenarioError(
            f"scenario {name} exited with {done.returncode}"
            + ("" if lines else " without a JSON result")
            + _outputs(done.stdout, done.stderr)
        )
    return json.loads(lines[-1])


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _outputs(stdout: str, stderr: str, tail: int = 8000) -> str:
    return f"\n--- stdout ---\n{stdout[-tail:]}\n--- stderr (tail) ---\n{stderr[-tail:]}"
