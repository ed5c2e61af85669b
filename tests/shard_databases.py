"""Extra PostgreSQL databases to add as shards: on the local server, or on a private
``initdb`` cluster started for the test session on another port."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from tests.conftest import POSTGRES_URL, free_port

#: A password in every shard URL: trust authentication ignores it, the tests look for it.
PASSWORD = "pw-" + secrets.token_hex(8)


def _create(admin_url: URL) -> tuple[str, Callable[[], None]]:
    name = f"dxc_shard_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        # As the test databases (conftest.postgres_database): commits need not wait for the disk.
        connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    admin.dispose()
    url = admin_url.set(database=name, password=PASSWORD)
    return url.render_as_string(hide_password=False), lambda: drop_database(url)


def drop_database(url: URL | str) -> None:
    """Drop the database of ``url`` (if it is still there), cutting off its connections."""
    url = make_url(url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def shard_database(postgres_available: bool) -> Iterator[Callable[[], str]]:
    """Makes empty databases on the local PostgreSQL server; their URLs (with a password)."""
    if not postgres_available:
        pytest.skip("no PostgreSQL")
    drops: list[Callable[[], None]] = []

    def make() -> str:
        url, drop = _create(make_url(POSTGRES_URL).set(drivername="postgresql+psycopg2"))
        drops.append(drop)
        return url

    yield make
    for drop in drops:
        drop()


@pytest.fixture(scope="session")
def private_cluster() -> Iterator[URL]:
    """A PostgreSQL cluster of our own (``initdb``) on a free port: a second server."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.skip("no initdb: cannot start a second PostgreSQL server")
    bin_dir = Path(binaries[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="dxc-pg-"))
    data, port = folder / "data", free_port()
    run_as = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    if run_as:
        shutil.chown(folder, "postgres")
    subprocess.run([*run_as, bin_dir / "initdb", "-D", data, "-U", "postgres", "-A", "trust"],
                   check=True, capture_output=True)
    subprocess.run(
        [*run_as, bin_dir / "pg_ctl", "-D", data, "-l", folder / "log", "-w", "-o",
         # Thrown away at the end (never crashed meanwhile): it need not wait for the disk.
         f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
        check=True, capture_output=True,
    )
    try:
        yield URL.create("postgresql+psycopg2", "postgres", None, "127.0.0.1", port, "postgres")
    finally:
        subprocess.run([*run_as, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def private_shard_database(private_cluster: URL) -> Iterator[str]:
    url, drop = _create(private_cluster)
    yield url
    drop()
