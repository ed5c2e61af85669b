"""A private PgBouncer in transaction pooling mode in front of the local PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import free_port

BINARY = "/usr/sbin/pgbouncer"


class Bouncer:
    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log

    def url(self, direct_url: str) -> str:
        """``direct_url`` (a database of the local server) reached through the pooler."""
        return make_url(direct_url).set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False
        )

    def transactions(self, database: str) -> int:
        """Transactions the pooler ran in ``database`` (its SHOW STATS)."""
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="pgbouncer"
        )
        connection.autocommit = True  # the admin console takes no transactions
        try:
            with connection.cursor() as cursor:
                cursor.execute("SHOW STATS")
                names = [column[0] for column in cursor.description]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            connection.close()
        return sum(int(row["total_xact_count"]) for row in rows if row["database"] == database)


@pytest.fixture
def pgbouncer(postgres_available: bool) -> Iterator[Bouncer]:
    """PgBouncer (Debian's package; scripts/test installs it) on a free port, trusting
    everyone, ``pool_mode = transaction``, forwarding every database to 127.0.0.1:5432."""
    if not postgres_available:
        pytest.skip("no PostgreSQL")
    if not os.access(BINARY, os.X_OK):
        pytest.skip("no pgbouncer: install the Debian package pgbouncer (scripts/test does)")
    folder = Path(tempfile.mkdtemp(prefix="dxc-pgbouncer-"))
    port = free_port()
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        "* = host=127.0.0.1 port=5432\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "admin_users = postgres\n"
        "pool_mode = transaction\nmax_client_conn = 1000\ndefault_pool_size = 20\n"
        f"logfile = {folder / 'pgbouncer.log'}\npidfile = {folder / 'pgbouncer.pid'}\n"
    )
    run_as = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]  # not as root
    if run_as:
        shutil.chown(folder, "postgres")
    process = subprocess.Popen(
        [*run_as, BINARY, str(folder / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(port, process, folder / "pgbouncer.log")
        yield Bouncer(port, folder / "pgbouncer.log")
    finally:
        pid_file = folder / "pgbouncer.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"pgbouncer exited:\n{text}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("pgbouncer did not start")
