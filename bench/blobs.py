"""Blob upload and download through the server against the same bytes straight into the store.

    .venv/bin/python bench/blobs.py [--postgres URL] [--size-mb 5] [--rounds 5]

Each round uploads one ``--size-mb`` blob with ``PUT /<db>/blob/<id>`` and
reads it back with ``GET /<db>/blob/<ref>`` (gunicorn, one gevent worker,
loopback, a kept-alive connection), and writes and reads the same bytes with
one raw ``INSERT`` / ``SELECT`` of a ``bytea`` on the same PostgreSQL
database (psycopg2, no server in between): the baseline. The four are
interleaved round by round. Printed: median MB/s of each and the ratio
server / raw. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import http.client
import secrets
import statistics
import sys
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live import USER, Server  # noqa: E402
from bench.sync import fresh_database  # noqa: E402
from dxc.auth.tokens import AccessClaims  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--size-mb", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    body = secrets.token_bytes(int(args.size_mb * 1024 * 1024))
    timings: dict[str, list[float]] = {k: [] for k in ("put", "insert", "get", "select")}
    with fresh_database(args.postgres) as url, Server(url, None, workers=1) as server:
        claims = AccessClaims(USER, frozenset({"ACCESS_DB"}), "demo", USER, None)
        token = server.services.signer.issue(server.db_id, claims).token
        client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        raw = psycopg2.connect(url)
        with raw, raw.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_raw (id text PRIMARY KEY, data bytea NOT NULL)")
        for n in range(args.rounds):
            blob_id = f"bench{n:04d}{secrets.token_hex(8)}"
            started = time.perf_counter()
            client.request("PUT", f"/{server.db_id}/blob/{blob_id}", body=body, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"})
            answer = client.getresponse()
            ref = answer.read()
            assert answer.status == 200, ref
            timings["put"].append(time.perf_counter() - started)

            started = time.perf_counter()
            with raw, raw.cursor() as cursor:
                cursor.execute("INSERT INTO bench_raw VALUES (%s, %s)", (blob_id, body))
            timings["insert"].append(time.perf_counter() - started)

            started = time.perf_counter()
            client.request("GET", f"/{server.db_id}/blob/1:{blob_id}",
                         headers={"Authorization": f"Bearer {token}"})
            answer = client.getresponse()
            data = answer.read()
            assert answer.status == 200 and data == body
            timings["get"].append(time.perf_counter() - started)

            started = time.perf_counter()
            with raw, raw.cursor() as cursor:
                cursor.execute("SELECT data FROM bench_raw WHERE id = %s", (blob_id,))
                assert bytes(cursor.fetchone()[0]) == body
            timings["select"].append(time.perf_counter() - started)
        raw.close()
    rate = {k: args.size_mb / statistics.median(v) for k, v in timings.items()}
    print(f"{args.rounds} rounds of {args.size_mb:g} MB, PostgreSQL, one gevent worker")
    print(f"upload:   server {rate['put']:7.1f} MB/s   raw INSERT {rate['insert']:7.1f} MB/s"
          f"   ratio {rate['put'] / rate['insert']:.2f}")
    print(f"download: server {rate['get']:7.1f} MB/s   raw SELECT {rate['select']:7.1f} MB/s"
          f"   ratio {rate['get'] / rate['select']:.2f}")


if __name__ == "__main__":
    main()
