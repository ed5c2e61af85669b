"""Push and pull N objects through ``/sync``, against raw PostgreSQL in the same run.

    .venv/bin/python bench/sync.py [--objects 20000] [--batch 1000]
    .venv/bin/python bench/sync.py --small 400 [--rounds 8]

Starts the real server (gunicorn + gevent, one worker) on a fresh PostgreSQL
database, logs a demo user in, pushes N inserts in requests of ``--batch``
operations (each with the ``lastPull`` of the answer before, as the client sends
them; only the requests are timed), then pulls all N objects as a new device
would (first sync).
The baseline inserts the same rows (same columns, same TSON text) into a
plain table with ``execute_values`` and selects them back. Prints operations
per second for both and their ratio; nothing here asserts a timing.

``--small N`` measures latency instead: N one-object ``/sync`` requests (with
``lastPull``, as a client sends them after its first sync) over one kept-alive
connection, against the same run's raw round trips (one ``INSERT … ON
CONFLICT`` and one ``SELECT`` per object, autocommit, psycopg2), the two
interleaved in ``--rounds`` rounds so that a busy moment hits both. Prints
median and p90 of each and their ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
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
    parser.add_argument("--small", type=int, metavar="N",
                        help="measure the latency of N one-object syncs instead")
    parser.add_argument("--rounds", type=int, default=8,
                        help="interleaved rounds of --small (server, raw, server, raw …)")
    args = parser.parse_args()
    if args.small:
        bench_small(args.postgres, args.small, args.rounds)
        return
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
    """Seconds to push ``values`` (requests of ``batch`` operations, each with the
    ``lastPull`` of the answer before, as the client sends them) and to pull them all."""
    with running_server(url) as (base, token):
        db_id = base.rsplit("/", 1)[1]
        last_pull = _last_pull(_post(f"{base}/sync", _sync_body("pusher", []), token,
                                     "application/tson"))
        push = 0.0
        for start in range(0, len(values), batch):
            chunk = values[start : start + batch]
            body = _sync_body("pusher", [{"table": "items", "muts": [{
                "type": "insert", "keys": [v["id"] for v in chunk], "values": chunk,
                "txid": f"tx{start}", "rev": start + 1}]}], db_id, last_pull)
            started = time.perf_counter()
            raw = _post(f"{base}/sync", body, token, "application/tson")
            push += time.perf_counter() - started
            last_pull = _last_pull(raw)
        body = _sync_body("puller", [])
        started = time.perf_counter()
        raw = _post(f"{base}/sync", body, token, "application/tson")
        pull = time.perf_counter() - started
        answer = tson.loads(raw)
        pulled = sum(len(m["keys"]) for e in answer["changes"] for m in e["muts"])
        assert pulled == len(values), f"pulled {pulled} of {len(values)}"
    return push, pull


def _last_pull(raw: bytes) -> dict:
    """What a client sends as ``lastPull`` after the answer ``raw``."""
    answer = tson.loads(raw)
    assert not answer["rejections"], answer["rejections"]
    return {key: answer[key] for key in ("serverRevision", "realms", "inviteRealms")}


@contextmanager
def running_server(url: str) -> Iterator[tuple[str, str]]:
    """The real server (gunicorn, one gevent worker) on ``url`` with a fresh database
    and a demo user: the database's base URL and the user's access token."""
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
            yield base, token
        finally:
            server.terminate()
            server.wait()
            services.control.dispose()


def bench_small(admin_url: str, n: int, rounds: int) -> None:
    """Latency of one-object syncs against raw INSERT + SELECT round trips, interleaved."""
    per_round = max(1, n // rounds)
    with fresh_database(admin_url) as url, running_server(url) as (base, token):
        raw = RawRoundTrips(url)
        server = SmallSyncs(base, token)
        server_times: list[float] = []
        raw_times: list[float] = []
        for round_ in range(rounds):
            for i in range(per_round):
                server_times.append(server.write(round_ * per_round + i))
            for i in range(per_round):
                raw_times.append(raw.write(round_ * per_round + i))
        server.close()
        raw.close()
    server_ms, raw_ms = _quantiles(server_times), _quantiles(raw_times)
    print(f"one-object /sync (with lastPull), {len(server_times)} requests in {rounds} rounds,"
          f" one gunicorn gevent worker, kept-alive connection")
    print(f"  /sync          median {server_ms[0]:6.2f} ms   p90 {server_ms[1]:6.2f} ms")
    print(f"  raw INSERT+SELECT median {raw_ms[0]:6.2f} ms   p90 {raw_ms[1]:6.2f} ms")
    print(f"  server/raw     median {server_ms[0] / raw_ms[0]:6.1f} x   "
          f"p90 {server_ms[1] / raw_ms[1]:6.1f} x")


class SmallSyncs:
    """One device that writes one object per ``/sync``, over one kept-alive connection."""

    def __init__(self, base: str, token: str) -> None:
        host, _, path = base.removeprefix("http://").partition("/")
        self.connection = http.client.HTTPConnection(host, timeout=60)
        self.path = f"/{path}/sync"
        self.headers = {"Content-Type": "application/tson", "Authorization": f"Bearer {token}"}
        self.db_id = path
        self.last_pull = self._sync(_sync_body("small", []))

    def write(self, n: int) -> float:
        """Seconds one sync of one new object takes."""
        value = {"id": f"itm{n:08d}small", "title": f"item {n}", "n": n, "realmId": USER,
                 "owner": USER}
        body = _sync_body("small", [{"table": "items", "muts": [{
            "type": "insert", "keys": [value["id"]], "values": [value],
            "txid": f"small{n}", "rev": n + 1}]}], self.db_id, self.last_pull)
        started = time.perf_counter()
        self.last_pull = self._sync(body)
        return time.perf_counter() - started

    def _sync(self, body: bytes) -> dict:
        self.connection.request("POST", self.path, body, self.headers)
        response = self.connection.getresponse()
        raw = response.read()
        assert response.status == 200, raw
        return _last_pull(raw)

    def close(self) -> None:
        self.connection.close()


class RawRoundTrips:
    """The baseline: per object, one upsert and one read of it, each its own round trip."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg2.connect(url)
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE raw_rows (db_id text, tbl text, key text, realm_id text,"
                " owner text, rev bigint, deleted boolean, value text,"
                " PRIMARY KEY (db_id, tbl, key))"
            )
            cursor.execute("CREATE INDEX ON raw_rows (db_id, realm_id, rev)")

    def write(self, n: int) -> float:
        value = tson.dumps({"id": f"itm{n:08d}small", "title": f"item {n}", "n": n,
                            "realmId": USER, "owner": USER})
        started = time.perf_counter()
        with self.connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO raw_rows VALUES ('zbench', 'items', %s, %s, %s, %s, false, %s)"
                " ON CONFLICT (db_id, tbl, key) DO UPDATE SET value = excluded.value,"
                " rev = excluded.rev",
                (f"itm{n:08d}small", USER, USER, n + 1, value),
            )
            cursor.execute(
                "SELECT key, value FROM raw_rows WHERE db_id = 'zbench' AND realm_id = %s"
                " AND rev > %s", (USER, n),
            )
            assert len(cursor.fetchall()) == 1
        return time.perf_counter() - started

    def close(self) -> None:
        self.connection.close()


def _quantiles(seconds: list[float]) -> tuple[float, float]:
    """Median and 90th percentile, in milliseconds."""
    deciles = statistics.quantiles(seconds, n=10)
    return statistics.median(seconds) * 1000, deciles[-1] * 1000


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


def _sync_body(identity: str, changes: list[dict], db_id: str | None = None,
               last_pull: dict | None = None) -> bytes:
    body = {"v": 3, "clientIdentity": identity, "schema": SCHEMA, "changes": changes,
            "baseRevs": [], "y": []}
    if last_pull is not None:
        body.update(dbID=db_id, lastPull=last_pull)
    return tson.dumps(body).encode()


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
