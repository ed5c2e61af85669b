"""Runs the real ``dexie-cloud`` CLI and answers its prompts like a person at a terminal.

The CLI reads answers with the ``prompts`` package, which drops input that
arrives before its question: each answer is written only once its prompt
text has appeared (driving-real-clients.md §7).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.runner import E2E

CLI = E2E / "node_modules" / "dexie-cloud" / "dexie-cloud"
TIMEOUT = 60


class CliSession:
    def __init__(self, cwd: Path, *args: str) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not installed: the CLI tests need Node 20+")
        if not CLI.exists():
            pytest.skip("tests/e2e/node_modules is missing: run `npm ci` in tests/e2e")
        self.process = subprocess.Popen(
            [node, str(CLI), *args], cwd=cwd, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self._output = bytearray()
        self._answered_up_to = 0
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read1(4096):
            with self._changed:
                self._output += chunk
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return self._output.decode(errors="replace")

    def answer(self, prompt: str, reply: str | Callable[[], str]) -> None:
        """Wait for ``prompt`` (after the previous answer), then type ``reply`` and Enter."""
        deadline = time.monotonic() + TIMEOUT
        with self._changed:
            while prompt.encode() not in self._output[self._answered_up_to:]:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the CLI never asked {prompt!r}:\n{self.output}")
                self._changed.wait(0.1)
            self._answered_up_to = len(self._output)
        text = reply() if callable(reply) else reply
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()

    def finish(self) -> tuple[int, str]:
        """The exit code and everything the CLI printed."""
        try:
            code = self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the CLI did not finish:\n{self.output}") from None
        self._reader.join(TIMEOUT)  # the rest of the output
        return code, self.output


def run_cli(cwd: Path, *args: str) -> tuple[int, str]:
    """A CLI command that asks nothing."""
    return CliSession(cwd, *args).finish()
