"""Shared fixtures: fresh databases on SQLite and PostgreSQL, and a real server.

Storage and sync tests take the ``backend`` fixture and so run twice. The
PostgreSQL half uses ``DXC_TEST_POSTGRES_URL`` (default: the local server)
and creates and drops its own databases; without a PostgreSQL it is skipped
loudly, unless ``DXC_REQUIRE_POSTGRES=1`` makes that a failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from app import create_app
from dxc.config import Settings, load_settings
from dxc.manage import databases
from dxc.services import Services
from dxc.storage.databases import ensure_default_shard
from dxc.storage.migrate import upgrade
from dxc.storage.objects import ObjectStore
from tests.mailbox import Mailbox

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
POSTGRES_URL = os.environ.get(
    "DXC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by where it lives and what it starts (markers: pyproject.toml)."""
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        if folder in ("unit", "e2e"):
            item.add_marker(folder)
        if "server" in item.fixturenames:
            item.add_marker("server")
        callspec = getattr(item, "callspec", None)
        if "database_url_postgresql" in item.fixturenames or (
            callspec is not None and callspec.params.get("backend") == "postgresql"
        ):
            item.add_marker("postgres")


def _postgres_admin_url() -> URL:
    return make_url(POSTGRES_URL).set(drivername="postgresql+psycopg2")


def _postgres_available() -> bool:
    try:
        engine = create_engine(_postgres_admin_url())
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    available = _postgres_available()
    if not available:
        if os.environ.get("DXC_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"DXC_REQUIRE_POSTGRES=1 but no PostgreSQL answers at {POSTGRES_URL}")
        warnings.warn(
            f"NO POSTGRESQL at {POSTGRES_URL}: the PostgreSQL half of the suite is SKIPPED",
            stacklevel=1,
        )
    return available


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A connection URL to a new database of ``backend`` with the newest schema (a copy of
    one migrated for the session: migrating costs more than most tests), dropped afterwards."""
    if backend == "sqlite":
        path = tmp_path / "dxc.sqlite"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        yield f"sqlite:///{path}"
        return
    yield request.getfixturevalue("database_url_postgresql")


@pytest.fixture
def blank_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A connection URL to an empty database of ``backend``: for the migrations' own tests."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'dxc.sqlite'}"
        return
    yield request.getfixturevalue("blank_database_url_postgresql")


@pytest.fixture
def blank_database_url_postgresql(postgres_available: bool) -> Iterator[str]:
    """An empty PostgreSQL database (a new installation's first start)."""
    if not postgres_available:
        pytest.skip("no PostgreSQL")
    with postgres_database() as url:
        yield url


@pytest.fixture
def database_url_postgresql(
    postgres_available: bool, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh PostgreSQL database with the newest schema, for tests that need PostgreSQL."""
    if not postgres_available:
        pytest.skip("no PostgreSQL")
    with postgres_database(template=request.getfixturevalue("migrated_postgres")) as url:
        yield url


def _migrate(url: str) -> None:
    """Give the empty database at ``url`` what ``databases.migrate`` gives a new installation."""
    engine = create_engine(url)
    upgrade(engine, "control")
    with engine.begin() as connection:
        ensure_default_shard(connection)
    upgrade(engine, "shard")
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("migrated") / "dxc.sqlite"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_available: bool) -> Iterator[str]:
    """The name of a migrated PostgreSQL database that test databases are copies of."""
    with postgres_database() as url:
        _migrate(url)
        yield make_url(url).database


@contextlib.contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database's URL (a copy of ``template``), dropped at the end.

    Its commits do not wait for the disk (``synchronous_commit = off``): a test
    that crashes PostgreSQL uses a cluster of its own."""
    name = f"dxc_test_{secrets.token_hex(6)}"
    admin = create_engine(_postgres_admin_url(), isolation_level="AUTOCOMMIT")
    copy_of = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"{copy_of}'))
        connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    try:
        yield _postgres_admin_url().set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def server_environment(database_url: str, tmp_path: Path, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DXC_", "DEXIE_CLOUD", "POSTGRESQLCONNSTR_", "CUSTOMCONNSTR_"))
    }
    env.update(
        DEXIE_CLOUD=database_url,
        DXC_SECRET="test-secret-" + secrets.token_hex(16),
        DXC_URL=f"http://127.0.0.1:{port}",
        DXC_INSTANCE_PATH=str(tmp_path / "instance"),
        PORT=str(port),
        HOST="127.0.0.1",
        WEB_CONCURRENCY="2",
        # Open sockets (live changes, a replication's stream) would hold a stopping server
        # for gunicorn's 30 s; tests that check draining set their own.
        DXC_GRACEFUL_TIMEOUT="3",
    )
    return env


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(server_environment(database_url, tmp_path, free_port()))


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The Flask app of an initialised installation, for in-process HTTP tests."""
    app = create_app(settings)
    databases.migrate(app.extensions["dxc"])
    yield app
    app.extensions["dxc"].control.dispose()


@pytest.fixture
def in_store(app: Flask) -> Callable[..., Any]:
    """A function that runs ``work(store)`` in one shard transaction of a new database
    (``db``: another database of the same shard)."""
    services = app.extensions["dxc"]
    db_id = databases.create_database(services).db_id
    shard = services.router.shard_for(db_id)

    def run(work: Callable[[ObjectStore], Any], db: str = db_id) -> Any:
        with shard.transaction() as connection:
            return work(ObjectStore(connection, db))

    return run


@pytest.fixture
def make_app(settings: Settings) -> Iterator[Callable[..., Flask]]:
    """Initialised apps whose settings differ from ``settings`` by the given overrides.

    Mail jobs run in-process (no ``REDIS_URL``), so that a mailbox receives them.
    """
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app(dataclasses.replace(settings, redis_url=None, **overrides))
        databases.migrate(app.extensions["dxc"])
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["dxc"].control.dispose()


@pytest.fixture
def mail_app(make_app: Callable[..., Flask], mailbox: Mailbox) -> Flask:
    """An initialised app that mails to ``mailbox`` (its e-mail channel)."""
    app = make_app()
    app.extensions["dxc"].mailer.configure(mailbox.url, mailbox.secret)
    return app


@pytest.fixture
def services(app: Flask) -> Services:
    """The same installation's services, used in-process."""
    return app.extensions["dxc"]


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A web-hook receiver standing in for the e-mail channel."""
    box = Mailbox()
    yield box
    box.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    """A gunicorn + gevent server in a child process, and the same installation in-process."""

    url: str
    services: Services
    process: subprocess.Popen[bytes]
    log_path: Path

    def create_database(self, demo_users: tuple[str, ...] = ()) -> str:
        """A fresh logical database (with these demo users); returns its URL."""
        from dxc.manage.importer import import_document

        created = databases.create_database(self.services)
        if demo_users:
            import_document(
                self.services, created.db_id, {"demoUsers": {u: {} for u in demo_users}}
            )
        return created.url

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def server_env() -> dict[str, str]:
    """Extra environment for the ``server`` fixture; override it in a test module."""
    return {}


@pytest.fixture
def server_app() -> str:
    """The WSGI app the ``server`` fixture serves; override it in a test module."""
    return "wsgi:app"


@pytest.fixture
def server(
    database_url: str, tmp_path: Path, server_env: dict[str, str], server_app: str
) -> Iterator[RunningServer]:
    with running_server(database_url, tmp_path, server_env, server_app) as running:
        yield running


@contextlib.contextmanager
def running_server(
    database_url: str, folder: Path, extra_env: dict[str, str] | None = None,
    wsgi_app: str = "wsgi:app",
) -> Iterator[RunningServer]:
    """A gunicorn server of a migrated installation on ``database_url``, stopped at the end
    (several may run side by side in different folders); ``wsgi_app``: what it serves."""
    port = free_port()
    env = {**server_environment(database_url, folder, port), **(extra_env or {})}
    app = create_app(load_settings(env))
    services = app.extensions["dxc"]
    databases.migrate(services)
    log_path = folder / "server.log"
    process = start_gunicorn(env, log_path, wsgi_app)
    running = RunningServer(f"http://127.0.0.1:{port}", services, process, log_path)
    try:
        _wait_for_port(port, process, log_path)
        yield running
    finally:
        stop_gunicorn(process)
        services.control.dispose()


def start_gunicorn(
    env: dict[str, str], log_path: Path, wsgi_app: str = "wsgi:app"
) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", wsgi_app],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_gunicorn(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not start:\n{log_path.read_text()}")
