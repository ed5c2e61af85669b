"""Private services to break, and the tools to break a running server, for the fault tests.

:class:`PrivatePostgres` and :class:`PrivateRedis` run on a free port of their own (never the
machine's PostgreSQL on 5432 or its Redis), so stopping them disturbs nothing else.
:class:`Writer` runs the ``fault_writer`` scenario (a real addon device that keeps writing)
in a thread while the test injects a fault.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from glob import glob
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tests.conftest import free_port
from tests.e2e.test_sync_e2e import scenario

#: The longest any single wait of a fault test may take.
WAIT_SECONDS = 45


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll ``condition`` until it is truthy (returned); fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# --- private PostgreSQL and Redis -----------------------------------------------------------


def _postgres_bin(name: str) -> str:
    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.skip("no PostgreSQL binaries in /usr/lib/postgresql/*/bin")
    return found[-1]


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb in a temporary folder, its own port)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="dxc-faults-pg-"))
        self.data = self.folder / "data"
        as_root = os.geteuid() == 0
        # initdb and postgres refuse to run as root: run them as the postgres user.
        self._as = ["runuser", "-u", "postgres", "--"] if as_root else []
        if as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(_postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.folder} -c fsync=off"
        self._run(
            _postgres_bin("pg_ctl"), "start", "-w", "-t", "30", "-D", str(self.data),
            "-l", str(self.folder / "postgres.log"), "-o", options,
        )  # fmt: skip

    def stop(self) -> None:
        """A fast shutdown: open sessions are ended, as in a real restart."""
        pg_ctl = _postgres_bin("pg_ctl")
        self._run(pg_ctl, "stop", "-w", "-t", "30", "-m", "fast", "-D", str(self.data))

    def close(self) -> None:
        subprocess.run(
            [*self._as, _postgres_bin("pg_ctl"), "stop", "-m", "immediate", "-D", str(self.data)],
            capture_output=True,
            timeout=30,
        )
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self._as, *command], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed:\n{done.stdout}\n{done.stderr}")


class PrivateRedis:
    """A redis-server without persistence on its own port."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(self._answers, "redis-server to start", timeout=15)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False


# --- the server under test --------------------------------------------------------------------


def workers(master_pid: int) -> set[int]:
    """The pids of gunicorn's workers (the master's children)."""
    found = set()
    for stat in glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == master_pid and fields[0] != "Z":
            found.add(int(stat.split("/")[2]))
    return found


def kill_workers(master_pid: int) -> set[int]:
    """SIGKILL every worker (no cleanup of any kind runs); returns their pids."""
    killed = workers(master_pid)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    return killed


def replaced(master_pid: int, old: set[int], count: int = 2) -> set[int]:
    """Wait until ``count`` workers run and none of ``old`` is among them."""
    return wait_until(
        lambda: (now := workers(master_pid)) and len(now) == count and not now & old and now,
        "gunicorn to replace its workers",
    )


def write_in_progress(database_url: str) -> bool:
    """True while some connection holds an open writing transaction on the database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        probe = sqlite3.connect(url.database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")  # fails at once while a writer holds the lock
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()
    engine = create_engine(url.set(drivername="postgresql+psycopg2"), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return bool(
                connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
                    )
                )
            )
    finally:
        engine.dispose()


def http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict, Any]:
    """Status, headers and JSON body of one request; bounded, so a hang fails the test."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


# --- a real device that keeps writing -------------------------------------------------------------


class Writer:
    """The ``fault_writer`` scenario, running in a thread until :meth:`finish`."""

    def __init__(self, server, database_url: str, user: str, folder: Path, batch: int) -> None:
        self.stop_file = folder / "writer.stop"
        self.progress_file = folder / "writer.progress"
        self._outcome: dict[str, Any] = {}
        args = {
            "databaseUrl": database_url,
            "user": user,
            "batch": batch,
            "stopFile": str(self.stop_file),
            "progressFile": str(self.progress_file),
        }
        self._thread = threading.Thread(target=self._run, args=(server, args), daemon=True)
        self._thread.start()

    def _run(self, server, args: dict[str, Any]) -> None:
        try:
            self._outcome["result"] = scenario(server, "fault_writer", timeout=180, **args)
        except BaseException as error:  # re-raised in the test's thread
            self._outcome["error"] = error

    def progress(self) -> dict[str, Any]:
        if "error" in self._outcome:
            raise self._outcome["error"]
        try:
            return json.loads(self.progress_file.read_text())
        except (OSError, ValueError):
            return {"round": 0, "acked": 0, "failures": 0, "state": "opening"}

    def wait(self, condition: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        return wait_until(lambda: condition(p := self.progress()) and p, what)

    def finish(self) -> dict[str, Any]:
        """Let the device converge; its result."""
        self.stop_file.touch()
        self._thread.join(timeout=200)
        if "error" in self._outcome:
            raise self._outcome["error"]
        assert "result" in self._outcome, "the writer did not finish"
        return self._outcome["result"]
