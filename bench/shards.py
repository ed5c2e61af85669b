"""Shards: what a database move costs its writers, and what a non-default shard costs a sync.

    .venv/bin/python bench/shards.py [--objects 10000] [--writers 4] [--moves 2] [--rounds 6]
                                     [--blob-mb 50]

Starts the real server (gunicorn + gevent, two workers) on a fresh PostgreSQL
control database with a second shard (another fresh database on the same
server). Two logical databases: ``home`` on the default shard and ``away``
moved to the second shard.

1. Sync overhead: one-object ``/sync`` requests to ``home`` and to ``away``,
   interleaved in ``--rounds`` rounds; median and p90 of each and their ratio.
2. The pause writers see: ``home`` gets ``--objects`` objects, then
   ``--writers`` devices write one object per ``/sync`` without pause while
   the database is moved back and forth ``--moves`` times. Prints p50/p99/max
   of the writes that overlapped a move against those that did not (same run),
   and how long each move held the writes.
3. What blobs kept in the shard cost a move's hold: two databases alike but
   for ``--blob-mb`` MB of blobs (1 MB each) in one, moved in turns
   ``--moves`` times each; the hold of each, and their ratio.

Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from bench.sync import (  # noqa: E402
    USER,
    SmallSyncs,
    _free_port,
    _post,
    _sync_body,
    _wait,
    fresh_database,
)
from dxc.config import load_settings  # noqa: E402
from dxc.manage import databases, moves  # noqa: E402
from dxc.manage.importer import import_document  # noqa: E402
from dxc.manage.shards import add_shard  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--moves", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=50)
    parser.add_argument("--blob-mb", type=int, default=50)
    parser.add_argument("--postgres", default=os.environ.get(
        "DXC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    with fresh_database(args.postgres) as control, fresh_database(args.postgres) as shard, \
            tempfile.TemporaryDirectory() as folder:
        port = _free_port()
        env = {**os.environ, "DEXIE_CLOUD": control, "DXC_SECRET": secrets.token_hex(16),
               "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2",
               "DXC_URL": f"http://127.0.0.1:{port}", "DXC_INSTANCE_PATH": folder}
        services = create_app(load_settings(env)).extensions["dxc"]
        databases.migrate(services)
        add_shard(services, "second", shard, weight=0)
        home, away = (databases.create_database(services).db_id for _ in range(2))
        for db_id in (home, away):
            import_document(services, db_id, {"demoUsers": {USER: {}}})
        moves.move_database(services, away, "second", hold_seconds=5)
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait(port)
            base = f"http://127.0.0.1:{port}"
            overhead(base, home, away, args.rounds, args.per_round)
            pause(services, base, home, args.objects, args.writers, args.moves)
            blob_holds(services, args.blob_mb, args.moves)
        finally:
            server.terminate()
            server.wait()
            services.control.dispose()


def overhead(base: str, home: str, away: str, rounds: int, per_round: int) -> None:
    devices = {db: SmallSyncs(f"{base}/{db}", _token(base, db)) for db in (home, away)}
    times: dict[str, list[float]] = {home: [], away: []}
    n = 0
    for _ in range(rounds):
        for db in (home, away):
            for _ in range(per_round):
                times[db].append(devices[db].write(n))
                n += 1
    for device in devices.values():
        device.close()
    h, a = _ms(times[home]), _ms(times[away])
    print(f"one-object /sync, {rounds} interleaved rounds of {per_round} per database")
    print(f"  default shard  median {h[0]:6.2f} ms  p90 {h[1]:6.2f} ms")
    print(f"  second shard   median {a[0]:6.2f} ms  p90 {a[1]:6.2f} ms")
    print(f"  second/default median {a[0] / h[0]:5.2f} x   p90 {a[1] / h[1]:5.2f} x")


def pause(services, base: str, db_id: str, objects: int, writers: int, count: int) -> None:
    token = _token(base, db_id)
    for start in range(0, objects, 1000):
        values = [{"id": f"itm{i:08d}bulk", "title": f"item {i}", "realmId": USER, "owner": USER}
                  for i in range(start, min(objects, start + 1000))]
        _post(f"{base}/{db_id}/sync", _sync_body("bulk", [{"table": "items", "muts": [{
            "type": "insert", "keys": [v["id"] for v in values], "values": values,
            "txid": f"bulk{start}", "rev": start + 1}]}]), token, "application/tson")
    writes: list[tuple[float, float]] = []  # (start, seconds)
    stop = threading.Event()

    def write(number: int) -> None:
        device = SmallSyncs(f"{base}/{db_id}", token)
        n = number * 10_000_000
        while not stop.is_set():
            started = time.monotonic()
            writes.append((started, device.write(n)))
            n += 1
        device.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    windows, held = [], []
    time.sleep(2)
    for i in range(count):
        started = time.monotonic()
        report = moves.move_database(
            services, db_id, "second" if i % 2 == 0 else "default", hold_seconds=5
        )
        windows.append((started, time.monotonic()))
        held.append(report.held_seconds)
        time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join()
    during = [s for t, s in writes if any(a <= t + s and t <= b for a, b in windows)]
    outside = [s for t, s in writes if not any(a <= t + s and t <= b for a, b in windows)]
    print(f"{objects} objects, {writers} writers writing without pause, {count} moves")
    print(f"  writes held per move: {', '.join(f'{h * 1000:.0f} ms' for h in held)}")
    for name, sample in (("during a move", during), ("outside moves", outside)):
        q = statistics.quantiles(sample, n=100)
        print(f"  {name:14} {len(sample):5} writes  p50 {statistics.median(sample) * 1000:7.1f} ms"
              f"  p99 {q[98] * 1000:7.1f} ms  max {max(sample) * 1000:7.1f} ms")


def blob_holds(services, megabytes: int, count: int) -> None:
    plain, blobby = (databases.create_database(services).db_id for _ in range(2))
    for db_id in (plain, blobby):
        import_document(services, db_id, {"demoUsers": {USER: {}}})
    for n in range(megabytes):
        data = secrets.token_bytes(1024 * 1024)
        services.blobs.upload(blobby, USER, f"benchblob{n:08d}", None, io.BytesIO(data), len(data))
    held: dict[str, list[float]] = {plain: [], blobby: []}
    for i in range(count):
        for db_id in (plain, blobby):
            report = moves.move_database(
                services, db_id, "second" if i % 2 == 0 else "default", hold_seconds=30
            )
            held[db_id].append(report.held_seconds)
    p, b = statistics.median(held[plain]), statistics.median(held[blobby])
    print(f"writes held per move, {count} moves each, in turns (blobs in the shard database)")
    print(f"  no blobs       median {p * 1000:8.1f} ms")
    print(f"  {megabytes:4} MB blobs  median {b * 1000:8.1f} ms   ratio {b / p:6.1f} x")


def _token(base: str, db_id: str) -> str:
    return json.loads(_post(f"{base}/{db_id}/token", json.dumps(
        {"grant_type": "demo", "demo_user": USER, "scopes": ["ACCESS_DB"]}).encode()
    ))["accessToken"]


def _ms(seconds: list[float]) -> tuple[float, float]:
    return statistics.median(seconds) * 1000, statistics.quantiles(seconds, n=10)[-1] * 1000


if __name__ == "__main__":
    main()
