"""Push and pull N objects through ``/sync``, against raw PostgreSQL in the same run.

    .venv/bin/python bench/sync.py [--objects 20000] [--batch 1000]

Starts the real server (gunicorn + gevent, one worker) on a fresh PostgreSQL
database, logs a demo user in, pushes N inserts in requests of ``--batch``
operations, then pulls all N objects as a new device would (first sync).
The baseline inserts the same rows (same columns, same TSON text) into a
plain table with ``execute_values`` and selects them back. Prints operations
per second for both and their ratio; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import psycopg2
from psycopg2.extras import execute_values

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from dxc import tson  # noqa: E402
from dxc.config import load_settings  # noqa: E402
from dxc.manage import databases  # noqa: E402
from dxc.manage.importer import import_document  # noqa: E402

USER = "bench@demo.local"
SCHEMA = {"items": {"generatedGlobalId": True, "idPrefix": "itm", "markedForSync": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "DXC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    values = [
        {"id": f"itm{i:08d}bench", "title": f"item {i}", "n": i, "tags": ["a", "b"],
         "when": tson.Date("2024-01-02T03:04:05.006Z"), "realmId": USER, "owner": USER}
        for i in range(args.objects)
    ]
    with fresh_database(args.postgres) as url:
        push, pull = bench_server(url, values, args.batch)
    with fresh_database(args.postgres) as url:
        raw_insert, raw_select = bench_raw(url, values)
    n = args.objects
    print(f"objects: {n}, operations per /sync request: {args.batch}")
    print(f"push  /sync: {n / push:10.0f} ops/s   raw INSERT: {n / raw_insert:10.0f} rows/s"
          f"   server/raw speed {raw_insert / push:.2f}")
    print(f"pull  /sync: {n / pull:10.0f} obj/s   raw SELECT: {n / raw_select:10.0f} rows/s"
          f"   server/raw speed {raw_select / pull:.2f}")


def bench_server(url: str, values: list[dict], batch: int) -> tuple[float, float]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "DEXIE_CLOUD": url, "DXC_SECRET": secrets.token_hex(16),
               "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1",
               "DXC_URL": f"http://127.0.0.1:{port}", "DXC_INSTANCE_PATH": folder}
        services = create_app(load_settings(env)).extensions["dxc"]
        databases.migrate(services)
        created = databases.create_database(services)
        import_document(services, created.db_id, {"demoUsers": {USER: {}}})
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait(port)
            base = f"http://127.0.0.1:{port}/{created.db_id}"
            token = json.loads(_post(f"{base}/token", json.dumps(
                {"grant_type": "demo", "demo_user": USER, "scopes": ["ACCESS_DB"]}
            ).encode()))["accessToken"]
            bodies = [
                _sync_body("pusher", [{"table": "items", "muts": [{
                    "type": "insert", "keys": [v["id"] for v in chunk], "values": chunk,
                    "txid": f"tx{start}", "rev": start + 1}]}])
                for start in range(0, len(values), batch)
                for chunk in [values[start : start + batch]]
            ]
            started = time.perf_counter()
            for body in bodies:
                _post(f"{base}/sync", body, token, "application/tson")
            push = time.perf_counter() - started
            body = _sync_body("puller", [])
            started = time.perf_counter()
            raw = _post(f"{base}/sync", body, token, "application/tson")
            pull = time.perf_counter() - started
            answer = tson.loads(raw)
            pulled = sum(len(m["keys"]) for e in answer["changes"] for m in e["muts"])
            assert pulled == len(values), f"pulled {pulled} of {len(values)}"
        finally:
            server.terminate()
            server.wait()
            services.control.dispose()
    return push, pull


def bench_raw(url: str, values: list[dict]) -> tuple[float, float]:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE rows (db_id text, tbl text, key text, realm_id text, owner text,"
            " rev bigint, deleted boolean, value text, PRIMARY KEY (db_id, tbl, key))"
        )
        cursor.execute("CREATE INDEX ON rows (db_id, realm_id, rev)")
    rows = [("zbench", "items", v["id"], USER, USER, 1, False, tson.dumps(v)) for v in values]
    started = time.perf_counter()
    with connection, connection.cursor() as cursor:
        execute_values(cursor, "INSERT INTO rows VALUES %s", rows, page_size=1000)
    insert = time.perf_counter() - started
    started = time.perf_counter()
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT key, value FROM rows WHERE db_id = 'zbench' AND realm_id = %s",
                       (USER,))
        assert len(cursor.fetchall()) == len(values)
    select = time.perf_counter() - started
    connection.close()
    return insert, select


def _sync_body(identity: str, changes: list[dict]) -> bytes:
    return tson.dumps({"v": 3, "clientIdentity": identity, "schema": SCHEMA,
                       "changes": changes, "baseRevs": [], "y": []}).encode()


def _post(url: str, body: bytes, token: str | None = None,
          content_type: str = "application/json") -> bytes:
    """POST ``body`` and return the raw answer (decoding it is the client's cost)."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.read()


@contextmanager
def fresh_database(admin_url: str):
    name = f"dxc_bench_{secrets.token_hex(4)}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


if __name__ == "__main__":
    main()
