"""How long other writers of a database wait behind one huge ``/sync``.

    .venv/bin/python bench/big_request.py [--db sqlite|postgres] [--transactions 20000]

A device pushes ``--transactions`` one-object transactions in a single
request (what a device that was offline for a long time sends). Meanwhile
another device of another user pushes one object per ``/sync``, back to
back. Printed: that device's latencies (median, max) while the big request
runs, against the same pushes on the idle server measured in the same run,
and how long the big request itself took. Two gevent workers; loopback only;
every loop is bounded; nothing here asserts a timing.
"""
# ruff: noqa: E402  (gevent must patch the standard library before anything imports it)

from gevent import monkey

monkey.patch_all()

import argparse
import statistics
import time

import gevent

from bench.live import USER, Device, Server, database
from bench.sync import SCHEMA
from dxc import tson
from dxc.manage.importer import import_document

OTHER = "other@demo.local"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--transactions", type=int, default=20000)
    parser.add_argument("--idle-pushes", type=int, default=50)
    args = parser.parse_args()
    with database(args) as url, Server(url, None, workers=2) as server:
        import_document(server.services, server.db_id, {"demoUsers": {OTHER: {}}})
        big, small = Device(server, "big"), Device(server, "small", user=OTHER)
        big.sync()
        small.sync()
        for device in (big, small):  # the big request, and a push behind it, may take minutes
            device.http.sock.settimeout(None)
        idle = [timed_push(small, n) for n in range(args.idle_pushes)]
        body = huge_body(server.db_id, big, args.transactions)
        busy: list[float] = []
        started = time.perf_counter()
        job = gevent.spawn(big._post, "/sync", body, "application/tson")
        gevent.sleep(0.05)  # the big request is under way
        n = args.idle_pushes
        while not job.ready() and len(busy) < 100_000:
            busy.append(timed_push(small, n))
            n += 1
        job.get()
        took = time.perf_counter() - started
        print(f"big request: {args.transactions} transactions in {took:.1f} s ({args.db})")
        print(f"other device, idle server: median {ms(statistics.median(idle))}, "
              f"max {ms(max(idle))}")
        if busy:
            print(f"other device, during it ({len(busy)} pushes): median "
                  f"{ms(statistics.median(busy))}, max {ms(max(busy))}; "
                  f"ratio of medians {statistics.median(busy) / statistics.median(idle):.1f}")


def timed_push(device: Device, n: int) -> float:
    started = time.perf_counter()
    device.sync(({"id": f"itmS{n}", "owner": OTHER, "realmId": OTHER, "n": n},))
    return time.perf_counter() - started


def huge_body(db_id: str, device: Device, transactions: int) -> bytes:
    changes = [{"table": "items", "muts": [
        {"type": "insert", "keys": [f"itmB{n}"], "txid": f"big-{n}", "rev": n + 1,
         "values": [{"id": f"itmB{n}", "owner": USER, "realmId": USER, "n": n}]}
        for n in range(transactions)]}]
    return tson.dumps({
        "v": 3, "clientIdentity": device.identity, "schema": SCHEMA, "changes": changes,
        "baseRevs": [], "y": [], "dbID": db_id,
        "lastPull": {"serverRevision": device.rev, "realms": [], "inviteRealms": []},
    }).encode()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


if __name__ == "__main__":
    main()
