"""Y.js updates per second through ``/sync`` and through the socket, against raw SQL.

    .venv/bin/python bench/yjs.py [--updates 300] [--rounds 3]

Starts the real server (gunicorn + gevent, one worker) on a fresh PostgreSQL
database, logs a demo user in and creates one object. Then, in ``--rounds``
interleaved rounds, one device stores ``--updates`` Y updates of that
object's document one at a time: each in its own ``/sync`` request (answer
read), each as a binary ``u-c`` frame on the ``/changes`` socket (its
``u-ack`` awaited), and, as the baseline, each as one autocommit ``INSERT``
of the same row into a copy of the ``y_updates`` table. Prints updates per
second of each and the ratios; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from pathlib import Path

import psycopg2
from simple_websocket import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sync import USER, _post, _sync_body, fresh_database, running_server  # noqa: E402
from dxc import tson  # noqa: E402
from dxc.protocol import ymessages  # noqa: E402
from dxc.protocol.ymessages import YMessage  # noqa: E402
from dxc.tson import Binary  # noqa: E402

KEY = "itm00000001yjs"
#: A small Yjs V2 update (one short insert), like a keystroke's.
UPDATE = bytes.fromhex("000005afd7d5b2010000010409067468656c6c6f01050101000001010000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300, help="updates per path and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "DXC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    times = {"sync": 0.0, "socket": 0.0, "raw": 0.0}
    with fresh_database(args.postgres) as url, running_server(url) as (base, token):
        create = [{"table": "items", "muts": [{
            "type": "insert", "keys": [KEY], "txid": "create", "rev": 1,
            "values": [{"id": KEY, "title": "doc", "realmId": USER, "owner": USER}]}]}]
        answer = tson.loads(
            _post(f"{base}/sync", _sync_body("bench", create), token, "application/tson")
        )
        pulled = {key: answer[key] for key in ("serverRevision", "realms", "inviteRealms")}
        socket = _socket(base, token)
        raw = psycopg2.connect(url)
        raw.autocommit = True
        with raw.cursor() as cursor:
            cursor.execute("CREATE TABLE raw_y (LIKE y_updates INCLUDING ALL)")
        next_i = 1
        for _ in range(args.rounds):
            times["sync"] += _through_sync(base, token, pulled, next_i, args.updates)
            times["socket"] += _through_socket(socket, next_i, args.updates)
            times["raw"] += _raw(raw, next_i, args.updates)
            next_i += args.updates
        socket.close()
        raw.close()
    n = args.updates * args.rounds
    rates = {path: n / seconds for path, seconds in times.items()}
    print(f"{n} Y updates per path, one at a time, {args.rounds} interleaved rounds,"
          " one gunicorn gevent worker")
    for path in ("sync", "socket"):
        ratio = rates["raw"] / rates[path]
        print(f"  {path:7} {rates[path]:8.0f} updates/s   raw/{path} {ratio:5.1f} x")
    print(f"  raw SQL {rates['raw']:8.0f} rows/s (one autocommit INSERT each)")


def _through_sync(base: str, token: str, last_pull: dict, first: int, count: int) -> float:
    """Seconds for ``count`` requests with one update each (with ``lastPull``, as a
    device sends them after its first sync; the socket's updates are this device's
    too, so no answer carries them back)."""
    bodies = []
    db_id = base.rsplit("/", 1)[1]
    for i in range(first, first + count):
        body = tson.loads(_sync_body("bench", [], db_id, last_pull))
        body["y"] = [{"type": "u-c", "table": "items", "prop": "content", "k": KEY,
                      "u": Binary("Uint8Array", UPDATE), "i": i}]
        bodies.append(tson.dumps(body).encode())
    started = time.perf_counter()
    for body in bodies:
        answer = _post(f"{base}/sync", body, token, "application/tson")
        assert b'"u-ack"' in answer, answer[-300:]
    return time.perf_counter() - started


def _socket(base: str, token: str) -> Client:
    query = urllib.parse.urlencode({"v": "3", "clientId": "bench", "token": token})
    return Client.connect(f"{base.replace('http', 'ws', 1)}/changes?{query}")


def _through_socket(socket: Client, first: int, count: int) -> float:
    frames = [
        ymessages.encode(YMessage("u-c", "items", "content", KEY, UPDATE, i=i))
        for i in range(first, first + count)
    ]
    started = time.perf_counter()
    for frame in frames:
        socket.send(frame)
        while not isinstance(answer := socket.receive(timeout=30), bytes):
            assert answer is not None, "no u-ack within 30 s"
        assert ymessages.decode(answer).type == "u-ack"
    return time.perf_counter() - started


def _raw(connection, first: int, count: int) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for i in range(first, first + count):
            cursor.execute(
                "INSERT INTO raw_y (db_id, tbl, prop, doc_key, rev, origin, data)"
                " VALUES ('zbench', 'items', 'content', %s, %s, 'bench', %s)",
                (KEY, i, UPDATE),
            )
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
