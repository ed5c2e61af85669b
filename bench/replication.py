"""Replication speed: objects per second copied from a source installation, against
``pg_dump | psql`` of the same data in the same run.

    .venv/bin/python bench/replication.py [--objects 50000] [--rounds 3]

Starts the source (gunicorn + gevent, one worker) on a fresh PostgreSQL
database holding N objects (written in revisions of 1000), then, interleaved
over ``--rounds``: copies it into an empty database of a second installation
exactly as the replication job does (the source's ``export/stream?since=0``
over HTTP, applied here revision for revision), and pipes ``pg_dump`` of the
source database into ``psql`` on another fresh database; and copies it as a
source without revisions is copied (``dxc.replication.full_reads``: the whole
export, ``export/stream`` without ``since``), then reads it whole again with
nothing changed, as every later round does. Prints objects per second of each
and their ratios to ``pg_dump | psql``; nothing here asserts a timing.
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
from dxc.replication.full_reads import apply_export  # noqa: E402
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
    full: list[float] = []
    again: list[float] = []
    with fresh_database(args.postgres) as source_url, source_server(source_url) as (url, key, svc):
        fill(svc, url.rsplit("/", 1)[1], args.objects)
        for _ in range(args.rounds):
            with fresh_database(args.postgres) as target_url:
                copies.append(replicate(target_url, url, key, args.objects))
            with fresh_database(args.postgres) as copy_url:
                dumps.append(dump_and_restore(source_url, copy_url))
            with fresh_database(args.postgres) as target_url:
                first, second = read_whole_twice(target_url, url, key, args.objects)
                full.append(first)
                again.append(second)
    n = args.objects
    dump = statistics.median(dumps)
    print(f"objects: {n}, rounds: {args.rounds} (medians; interleaved)")
    print(f"pg_dump | psql:                {n / dump:10.0f} obj/s")
    for name, times in (("replication (since)", copies), ("full read, first", full),
                        ("full read, nothing new", again)):
        seconds = statistics.median(times)
        print(f"{name + ':':30}{n / seconds:10.0f} obj/s   speed of pg_dump | psql "
              f"{dump / seconds:.2f}")


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


@contextmanager
def target_installation(
    target_url: str, source_db_url: str, key: ClientKey
) -> Iterator[tuple[Services, str, Source]]:
    """A new installation on ``target_url``, its empty database, and the source."""
    with tempfile.TemporaryDirectory() as folder:
        env = {"DEXIE_CLOUD": target_url, "DXC_SECRET": secrets.token_hex(16),
               "DXC_URL": "http://127.0.0.1:1", "DXC_INSTANCE_PATH": folder}
        services = create_app(load_settings(env)).extensions["dxc"]
        databases.migrate(services)
        source = Source(source_db_url)
        source.use_key(key)
        try:
            yield services, databases.create_database(services).db_id, source
        finally:
            services.control.dispose()


def replicate(target_url: str, source_db_url: str, key: ClientKey, n: int) -> float:
    """Seconds to copy the source into a new installation on ``target_url``."""
    copied = 0

    def progress(_round: object, _checkpoint: int, rows: int) -> None:
        nonlocal copied
        copied += rows

    with target_installation(target_url, source_db_url, key) as (services, db_id, source):
        started = time.perf_counter()
        apply_stream(services, db_id, source.changes(0), progress)
        seconds = time.perf_counter() - started
    assert copied == n, f"copied {copied} of {n}"
    return seconds


def read_whole_twice(
    target_url: str, source_db_url: str, key: ClientKey, n: int
) -> tuple[float, float]:
    """Seconds of a full-read copy's first read, and of a second one with nothing new."""
    with target_installation(target_url, source_db_url, key) as (services, db_id, source):
        times, written = [], []
        for _ in range(2):
            started = time.perf_counter()
            found = apply_export(services, db_id, source.export(), lambda rows: None)
            times.append(time.perf_counter() - started)
            written.append(found.written)
    assert written == [n, 0], f"wrote {written} of {n}"
    return times[0], times[1]


def dump_and_restore(source_url: str, copy_url: str) -> float:
    started = time.perf_counter()
    dump = subprocess.Popen(["pg_dump", "--no-owner", source_url], stdout=subprocess.PIPE)
    subprocess.run(["psql", "-q", "-o", "/dev/null", copy_url], stdin=dump.stdout, check=True)
    dump.stdout.close()  # type: ignore[union-attr]
    assert dump.wait() == 0
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
