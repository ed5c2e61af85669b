"""Many writers on one database: pushes per second and their latency.

    .venv/bin/python bench/load.py [--clients 50] [--seconds 15] [--rounds 3] [--workers 2]

``--clients`` devices, each of its own demo user, push 4 new objects per
``/sync`` (with ``lastPull``, as the addon sends them after its first sync)
back to back, all to one database, for ``--seconds``. The real server runs
(gunicorn + gevent, ``--workers`` workers) on a fresh PostgreSQL database.

The baseline, in a separate process, runs the same writes straight on
PostgreSQL from ``--clients`` threads, each on its own connection: per push
one transaction inserting the 4 rows (``INSERT … ON CONFLICT DO UPDATE``, the
same columns and TSON text) and one ``SELECT`` of the rows the client has not
seen yet (its pull). Before the rounds each device pushes once, the baseline's
table gets as many rows, and both databases are analysed (``ANALYZE``, as
autovacuum would within a minute). Server and baseline alternate in ``--rounds`` rounds, so
a busy moment hits both. Printed per round and in all: pushes/s, p50 and p99
latency, and the ratios. The clients run on this machine too (one gevent
process); nothing here asserts a timing.

Also printed: the CPU time spent per push by the server's workers, by
PostgreSQL (every backend, those that ended included) and by the clients,
and the rate those would allow if they had the machine's CPUs to themselves.
Every PostgreSQL process of the machine is counted: on a busy machine
(another test suite on the same cluster) that figure is too high.
"""
# ruff: noqa: E402  (gevent must patch the standard library before anything imports it)

import sys

if "--raw" not in sys.argv:  # the baseline uses real threads
    from gevent import monkey

    monkey.patch_all()

import argparse
import json
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import psycopg2
from psycopg2.extras import execute_values

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sync import fresh_database
from dxc import tson

OBJECTS_PER_PUSH = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "DXC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--raw", metavar="URL", help=argparse.SUPPRESS)  # the baseline process
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw:
        print(json.dumps(run_raw(args.raw, args.clients, args.seconds, args.round)))
        return
    print(f"{args.clients} clients, {OBJECTS_PER_PUSH} objects per push, {args.seconds:.0f} s "
          f"per round, {args.rounds} rounds, {args.workers} gevent workers; load average "
          f"{os.getloadavg()[0]:.2f}")
    ours: list[dict] = []
    raw: list[dict] = []
    with fresh_database(args.postgres) as url, fresh_database(args.postgres) as raw_url:
        create_raw_table(raw_url)
        from bench.live import Server  # imported here: it needs the gevent patch

        with Server(url, None, workers=args.workers, connections=args.clients + 50) as server:
            devices = make_devices(server, args.clients)
            warm_up(devices, raw_url, args.clients)
            analyze(url, raw_url)
            for number in range(args.rounds):
                ours.append(measured(partial(run_server, devices, args.seconds, number),
                                     server.worker_pids()))
                raw.append(measured(partial(raw_round, raw_url, args, number), []))
                print(f"round {number + 1}: {line('dxc-server', ours[-1])} | "
                      f"{line('raw PostgreSQL', raw[-1])}")
    total_ours, total_raw = combined(ours), combined(raw)
    print(f"all rounds: {line('dxc-server', total_ours)} | {line('raw PostgreSQL', total_raw)}")
    print(f"ratio dxc-server/raw: pushes/s {total_ours['rate'] / total_raw['rate']:.2f}, "
          f"p50 {total_ours['p50'] / total_raw['p50']:.1f}x, "
          f"p99 {total_ours['p99'] / total_raw['p99']:.1f}x")
    for name, total in (("dxc-server", total_ours), ("raw PostgreSQL", total_raw)):
        print(f"CPU ms per push, {name}: {cpu_line(total)}")


# --- the server ----------------------------------------------------------------------------------


def make_devices(server, clients: int) -> list:
    from bench.live import Device
    from dxc.manage.importer import import_document

    users = [f"load{n}@demo.local" for n in range(clients)]
    import_document(server.services, server.db_id, {"demoUsers": {u: {} for u in users}})
    devices = [Device(server, f"load-{n}", user=user) for n, user in enumerate(users)]
    for device in devices:
        device.sync()  # the first sync: from now on every push carries lastPull
    return devices


def warm_up(devices: list, raw_url: str, clients: int) -> None:
    """One push of every device, and as many rows in the baseline's table: rows for
    ``analyze`` to sample."""
    for number, device in enumerate(devices):
        answer = device.sync(tuple(_warm_up_values(number)))
        assert not answer.get("rejections"), answer["rejections"]
    connection = psycopg2.connect(raw_url)
    with connection, connection.cursor() as cursor:
        execute_values(
            cursor, "INSERT INTO rows (db_id, tbl, key, realm_id, owner, deleted, value) VALUES %s",
            [("zload", "items", value["id"], value["owner"], value["owner"], False,
              tson.dumps(value)) for number in range(clients) for value in _warm_up_values(number)],
        )
    connection.close()


def _warm_up_values(number: int) -> list[dict]:
    user = f"load{number}@demo.local"
    return [{"id": f"itm{number}w{o}", "owner": user, "realmId": user, "title": "warm-up",
             "done": False} for o in range(OBJECTS_PER_PUSH)]


def analyze(*urls: str) -> None:
    """Give PostgreSQL's planner the statistics that autovacuum gathers within a minute of a
    table's first rows. Without them it takes every column for a rare value: it looks up a
    push's keys by reading every object of the database's table (the primary key's prefix,
    the key as a filter), and each push costs more as the table grows. A live database has
    them; the bench's round would otherwise end before autovacuum came by."""
    for url in urls:
        connection = psycopg2.connect(url)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        connection.close()


def run_server(devices: list, seconds: float, number: int) -> dict:
    import gevent

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    def client(index: int, device) -> None:
        user = f"load{index}@demo.local"
        n = 0
        while time.perf_counter() < deadline:
            values = tuple(
                {"id": f"itm{index}r{number}n{n}o{o}", "owner": user, "realmId": user,
                 "title": f"item {n}.{o}", "done": False}
                for o in range(OBJECTS_PER_PUSH)
            )
            started = time.perf_counter()
            device.sync(values)
            latencies.append(time.perf_counter() - started)
            n += 1

    started = time.perf_counter()
    gevent.joinall([gevent.spawn(client, i, d) for i, d in enumerate(devices)], raise_error=True)
    return summary(latencies, time.perf_counter() - started)


# --- the baseline -------------------------------------------------------------------------------


def create_raw_table(url: str) -> None:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE rows (db_id text, tbl text, key text, realm_id text, owner text,"
            " rev bigserial, deleted boolean, value text, PRIMARY KEY (db_id, tbl, key))"
        )
        cursor.execute("CREATE INDEX ON rows (db_id, realm_id, rev)")
    connection.close()


def raw_round(url: str, args, number: int) -> dict:
    """One baseline round, in a process of its own (real threads, no gevent)."""
    output = subprocess.run(
        [sys.executable, __file__, "--raw", url, "--clients", str(args.clients),
         "--seconds", str(args.seconds), "--round", str(number)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def run_raw(url: str, clients: int, seconds: float, number: int) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        user = f"load{index}@demo.local"
        connection = psycopg2.connect(url)
        seen = 0
        mine: list[float] = []
        n = 0
        with connection.cursor() as cursor:
            while time.perf_counter() < deadline:
                rows = [
                    ("zload", "items", f"itm{index}r{number}n{n}o{o}", user, user, False,
                     tson.dumps({"id": f"itm{index}r{number}n{n}o{o}", "owner": user,
                                 "realmId": user, "title": f"item {n}.{o}", "done": False}))
                    for o in range(OBJECTS_PER_PUSH)
                ]
                started = time.perf_counter()
                execute_values(
                    cursor,
                    "INSERT INTO rows (db_id, tbl, key, realm_id, owner, deleted, value) "
                    "VALUES %s ON CONFLICT (db_id, tbl, key) DO UPDATE SET "
                    "value = excluded.value, rev = excluded.rev RETURNING key",
                    rows,
                )
                connection.commit()
                cursor.execute(
                    "SELECT key, rev, value FROM rows WHERE db_id = 'zload' AND realm_id = %s "
                    "AND rev > %s",
                    (user, seen),
                )
                seen = max([seen, *(row[1] for row in cursor.fetchall())])
                connection.commit()
                mine.append(time.perf_counter() - started)
                n += 1
        connection.close()
        with lock:
            latencies.extend(mine)

    started, cpu = time.perf_counter(), client_cpu_ms()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {**summary(latencies, time.perf_counter() - started),
            "clients_cpu": client_cpu_ms() - cpu}


# --- CPU time ----------------------------------------------------------------------------------


def measured(run: Callable[[], dict], server_pids: list[int]) -> dict:
    """``run()``'s figures with the CPU time the server's workers, PostgreSQL and the
    clients spent meanwhile (a baseline round reports its own clients' time)."""
    workers, postgres, clients = sum(map(cpu_ms, server_pids)), postgres_cpu_ms(), client_cpu_ms()
    figures = run()
    figures["cpu"] = {
        "server": sum(map(cpu_ms, server_pids)) - workers,
        "postgres": postgres_cpu_ms() - postgres,
        "clients": figures.pop("clients_cpu", client_cpu_ms() - clients),
    }
    return figures


def cpu_ms(pid: int, children: bool = False) -> float:
    """CPU time (user and system) of process ``pid``, or of the children it reaped."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    first = 13 if children else 11  # cutime, cstime / utime, stime
    return (int(fields[first]) + int(fields[first + 1])) * 1000 / os.sysconf("SC_CLK_TCK")


def postgres_cpu_ms() -> float:
    """CPU time of every PostgreSQL process of this machine so far: the live ones, and
    the backends that ended (the postmaster reaped them: its children's time)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" (", 1)
            name, fields = rest.rsplit(")", 1)
            if name != "postgres":
                continue
            total += cpu_ms(int(pid))
            if int(fields.split()[1]) == 1 or not _is_postgres(int(fields.split()[1])):
                total += cpu_ms(int(pid), children=True)  # the postmaster
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # ended meanwhile
    return total


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except FileNotFoundError:
        return False


def client_cpu_ms() -> float:
    return time.process_time() * 1000


def cpu_line(figures: dict) -> str:
    cpu, pushes = figures["cpu"], figures["pushes"]
    per_push = {name: ms / pushes for name, ms in cpu.items()}
    together = sum(per_push.values())
    cores = os.cpu_count() or 1
    return (", ".join(f"{name} {ms:.2f}" for name, ms in per_push.items())
            + f"; in all {together:.2f}: {cores} CPUs allow at most "
              f"{cores * 1000 / together:.0f} pushes/s")


# --- figures -------------------------------------------------------------------------------------


def summary(latencies: list[float], seconds: float) -> dict:
    ordered = sorted(latencies)
    return {
        "pushes": len(ordered),
        "seconds": seconds,
        "rate": len(ordered) / seconds,
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "latencies": ordered,
    }


def combined(rounds: list[dict]) -> dict:
    latencies = [value for r in rounds for value in r["latencies"]]
    total = summary(latencies, sum(r["seconds"] for r in rounds))
    total["cpu"] = {name: sum(r["cpu"][name] for r in rounds) for name in rounds[0]["cpu"]}
    return total


def line(name: str, figures: dict) -> str:
    return (f"{name} {figures['rate']:.0f} pushes/s, p50 {figures['p50']:.1f} ms, "
            f"p99 {figures['p99']:.1f} ms")


if __name__ == "__main__":
    main()
