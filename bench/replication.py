"""Replication speed: objects per second copied from a source installation, against
``pg_dump | psql`` of the same data in the same run.

    .venv/bin/python bench/replication.py [--objects 50000] [--rounds 3]

Starts the source (gunicorn + gevent, one worker) on a fresh PostgreSQL
database holding N objects (written in revisions of 1000), then, interleaved
over ``--rounds``: copies it into an empty database of a second installation
exactly as the replication job does (the source's ``export/stream?since=0``
over HTTP, applied here revision for revision), and pipes ``pg_dump`` of the
source database into ``psql`` on another fresh database. Prints objects per
second of both and their ratio; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from bench.sync import _free_port, _wait, fresh_database  # noqa: E402
from dxc.auth.scopes import ADMIN_SCOPES  # noqa: E402
from dxc.config import load_settings  # noqa: E402
from dxc.manage import databases  # noqa: E402
from dxc.manage.importer import import_document  # noqa: E402
from dxc.replication.apply import apply_stream  # noqa: E402
from dxc.replication.source import ClientKey, Source  # noqa: E402
from dxc.services import Services  # noqa: E402
from dxc.storage import credentials  # noqa: E402

USER = "bench@demo.local"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get(
        "DXC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    copies: list[float] = []
    dumps: list[float] = []
    with fresh_database(args.postgres) as source_url, source_server(source_url) as (url, key, svc):
        fill(svc, url.rsplit("/", 1)[1], args.objects)
        for _ in range(args.rounds):
            with fresh_database(args.postgres) as target_url:
                copies.append(replicate(target_url, url, key, args.objects))
            with fresh_database(args.postgres) as copy_url:
                dumps.append(dump_and_restore(source_url, copy_url))
    n = args.objects
    copy, dump = statistics.median(copies), statistics.median(dumps)
    print(f"objects: {n}, rounds: {args.rounds} (medians; interleaved)")
    print(f"replication: {n / copy:10.0f} obj/s   pg_dump | psql: {n / dump:10.0f} obj/s"
          f"   replication/pg_dump speed {dump / copy:.2f}")


@contextmanager
def source_server(url: str) -> Iterator[tuple[str, ClientKey, Services]]:
    """The source: gunicorn on ``url``, a database, and a GLOBAL_READ API client of it."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "DEXIE_CLOUD": url, "DXC_SECRET": secrets.token_hex(16),
               "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1",
               "DXC_URL": f"http://127.0.0.1:{port}", "DXC_INSTANCE_PATH": folder}
        services = create_app(load_settings(env)).extensions["dxc"]
        databases.migrate(services)
        created = databases.create_database(services)
        with services.control.begin() as connection:
            client, secret = credentials.create_api_client(
                connection, created.db_id, ADMIN_SCOPES, None
            )
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait(port)
            yield created.url, ClientKey(client.client_id, secret), services
        finally:
            server.terminate()
            server.wait()
            services.control.dispose()


def fill(services: Services, db_id: str, n: int) -> None:
    for start in range(0, n, 1000):
        import_document(services, db_id, {"data": {USER: {"items": {
            f"itm{i:08d}bench": {"title": f"item {i}", "n": i, "tags": ["a", "b"], "owner": USER}
            for i in range(start, min(n, start + 1000))
        }}}})


def replicate(target_url: str, source_db_url: str, key: ClientKey, n: int) -> float:
    """Seconds to copy the source into a new installation on ``target_url``."""
    with tempfile.TemporaryDirectory() as folder:
        env = {"DEXIE_CLOUD": target_url, "DXC_SECRET": secrets.token_hex(16),
               "DXC_URL": "http://127.0.0.1:1", "DXC_INSTANCE_PATH": folder}
        services = create_app(load_settings(env)).extensions["dxc"]
        databases.migrate(services)
        db_id = databases.create_database(services).db_id
        source = Source(source_db_url)
        source.use_key(key)
        copied = 0

        def progress(_round: object, _checkpoint: int, rows: int) -> None:
            nonlocal copied
            copied += rows

        started = time.perf_counter()
        apply_stream(services, db_id, source.changes(0), progress)
        seconds = time.perf_counter() - started
        services.control.dispose()
    assert copied == n, f"copied {copied} of {n}"
    return seconds


def dump_and_restore(source_url: str, copy_url: str) -> float:
    started = time.perf_counter()
    dump = subprocess.Popen(["pg_dump", "--no-owner", source_url], stdout=subprocess.PIPE)
    subprocess.run(["psql", "-q", "-o", "/dev/null", copy_url], stdin=dump.stdout, check=True)
    dump.stdout.close()  # type: ignore[union-attr]
    assert dump.wait() == 0
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
