"""Live changes: latency, fan-out and the cost of idle ``/changes`` sockets.

    .venv/bin/python bench/live.py [--db sqlite|postgres] [--redis URL] [--writes 200]
                                   [--max-sockets 4000] [--deflate] [--fanouts 1]
                                   [--fanout-only]

1. Latency (two workers). A writer pushes one insert per ``/sync`` over a
   kept-alive connection (so one worker serves all its requests). Two readers
   of the same user hold sockets, one on the writer's worker and one on the
   other, and answer each ``changes`` with ``ready`` as the addon does after
   applying it. Printed: the time from the end of the writer's ``/sync``
   answer to the message's arrival (negative: it came first; the change is
   published before the answer is streamed), with 1, 100 and 1000 other idle
   sockets open (anonymous, on the public realm of the same database; the
   private writes must not wake them).
2. Fan-out: one import into the public realm (``--fanouts``: one after the
   other); time until each of the ``--sockets`` (1000) anonymous sockets has its ``changes``
   message (median and last), measured twice: when the client read the bytes
   off the socket, and when it had handled the message as the addon does
   (parsed it, noted the revision, sent ``ready``). All 1000 sockets live in
   this one process, on the server's CPUs: the later sockets' times include the
   client's work on the earlier ones (~0.1 ms each), hence both figures and the
   CPU time the workers and this process spent meanwhile.
   ``--fanout-only``: just this, without the latency writes and part 3.
   ``--node-clients``: the sockets live in one Node process instead
   (bench/fanout_client.mjs, with the ``ws`` package the addon uses in Node),
   whose event loop handles a message in a fraction of this process's time:
   closer to 1000 devices that each handle their own message. Implies
   ``--fanout-only``. With it ``--sockets`` may go to 10 000 and more (the
   workers' ``DXC_WORKER_CONNECTIONS`` follow; ``ulimit -n`` must allow them).
3. Memory and capacity (one worker): RSS before and after opening idle
   sockets, and how many one worker holds (up to ``--max-sockets``, each
   answering a ping).

``--deflate``: the bench's sockets offer permessage-deflate, as browsers and
Node's ``ws`` do (without it they do not), and the memory is measured after
each socket sent a ``ping`` and received its ``pong``, compressed.

Loopback only; every loop is bounded; nothing here asserts a timing.
"""
# ruff: noqa: E402  (gevent must patch the standard library before anything imports it)

from gevent import monkey

monkey.patch_all()

import argparse
import http.client
import json
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import gevent
from gevent.event import Event
from simple_websocket import Client, ConnectionClosed
from wsproto.events import RejectConnection, Request
from wsproto.extensions import PerMessageDeflate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app
from bench.sync import SCHEMA, _free_port, _wait, fresh_database
from dxc import tson
from dxc.config import load_settings
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.protocol.live import realm_set_hash

USER = "bench@demo.local"
PUBLIC_HASH = realm_set_hash(["rlm-public"])
USER_HASH = realm_set_hash(["rlm-public", USER])
WAIT = 30  # seconds any single step may take before the bench gives up
FANOUT_SOCKETS = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--redis", help="a Redis URL: use the Redis bus")
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--max-sockets", type=int, default=4000)
    parser.add_argument("--deflate", action="store_true",
                        help="the sockets offer permessage-deflate, as browsers do")
    parser.add_argument("--fanouts", type=int, default=1, help="public imports, one at a time")
    parser.add_argument("--sockets", type=int, default=FANOUT_SOCKETS,
                        help="the fan-out's sockets (the Python client's take ~0.1 ms each)")
    parser.add_argument("--fanout-only", action="store_true",
                        help="only the fan-out: no latency writes, no memory and capacity")
    parser.add_argument("--node-clients", action="store_true",
                        help="the fan-out's sockets in one Node process (implies --fanout-only)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "DXC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    args.fanout_only = args.fanout_only or args.node_clients
    Reader.deflate = args.deflate
    bus = "Redis pub/sub" if args.redis else (
        "LISTEN/NOTIFY" if args.db == "postgres" else "datagrams between the workers")
    pause = 0.0
    print(f"database: {args.db}, bus: {bus}, writes per measurement: {args.writes}, "
          f"permessage-deflate: {'offered' if args.deflate else 'not offered'}"
          + (f", each after a random pause of up to {pause:.1f} s" if pause else ""))
    connections = max(1000, args.sockets + 200)  # a worker may be given every socket
    with database(args) as url, Server(url, args.redis, 2, connections) as server:
        if args.node_clients:
            bench_fanout_node(server, args.fanouts, args.deflate, args.sockets)
            return
        idle = [] if args.fanout_only else bench_latency(server, args.writes, pause)
        idle += open_idle(server, args.sockets - len(idle), "fanout")
        bench_fanout(server, idle, args.fanouts)
    if args.fanout_only:
        return
    connections = args.max_sockets + 200
    with database(args) as url, Server(url, args.redis, 1, connections) as server:
        bench_memory(server, args.max_sockets)


@contextmanager
def database(args):
    if args.db == "postgres":
        with fresh_database(args.postgres) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/dxc.sqlite"


# --- the server --------------------------------------------------------------------------------


class Server:
    """gunicorn with ``workers`` gevent workers on a fresh database with one demo user."""

    def __init__(self, url: str, redis_url: str | None, workers: int, connections: int = 1000):
        self.folder = tempfile.TemporaryDirectory()
        self.port = _free_port()
        self.env = {
            **os.environ, "DEXIE_CLOUD": url, "DXC_SECRET": secrets.token_hex(16),
            "PORT": str(self.port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": str(workers),
            "DXC_URL": f"http://127.0.0.1:{self.port}", "DXC_INSTANCE_PATH": self.folder.name,
            "DXC_WORKER_CONNECTIONS": str(connections),
        }
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.log_path = Path(self.folder.name) / "server.log"
        self.workers = workers

    def __enter__(self) -> "Server":
        self.services = create_app(load_settings(self.env)).extensions["dxc"]
        databases.migrate(self.services)
        self.db_id = databases.create_database(self.services).db_id
        import_document(self.services, self.db_id, {"demoUsers": {USER: {}}})
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        _wait(self.port)
        deadline = time.monotonic() + WAIT
        while len(self.worker_pids()) < self.workers:
            assert time.monotonic() < deadline, "the workers did not boot"
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:
            print("--- server log (tail) ---\n" + self.log()[-3000:])
        self.process.terminate()
        self.process.wait()
        self.services.control.dispose()
        self.folder.cleanup()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        return [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", self.log())]

    def sockets_opened(self, client_id: str) -> list[int]:
        """The workers that logged a ``live open`` of ``client_id``, oldest first."""
        pattern = (
            rf"\[(\d+)\] INFO dxc\.realtime\.service: live open db=\S+ "
            rf"client={re.escape(client_id)} "
        )
        return [int(pid) for pid in re.findall(pattern, self.log())]

    def last_sync_worker(self) -> int:
        return int(re.findall(r"\[(\d+)\] INFO dxc\.api\.database: sync db=", self.log())[-1])

    def cpu_ms(self, pid: int) -> float:
        """The CPU time ``pid`` has used so far (user and system)."""
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")

    def rss_kb(self, pid: int) -> int:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


# --- clients -------------------------------------------------------------------------------------


class Device:
    """A protocol-level client: /token and /sync over one kept-alive connection."""

    def __init__(self, server: Server, identity: str, user: str | None = USER) -> None:
        self.server = server
        self.identity = identity
        self.http = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
        self.path = f"/{server.db_id}"
        self.token = None
        self.rev = None
        self.realms: list[str] = []
        self.mutation = 0
        if user:
            answer = json.loads(self._post("/token", json.dumps(
                {"grant_type": "demo", "demo_user": user, "scopes": ["ACCESS_DB"]}).encode(),
                "application/json"))
            self.token = answer["accessToken"]

    def _post(self, path: str, body: bytes, content_type: str) -> bytes:
        headers = {"Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.http.request("POST", self.path + path, body, headers)
        response = self.http.getresponse()
        data = response.read()
        assert response.status == 200, data
        return data

    def sync(self, values: tuple[dict, ...] = ()) -> dict:
        changes = []
        if values:
            self.mutation += 1
            changes = [{"table": "items", "muts": [{
                "type": "insert", "keys": [v["id"] for v in values], "values": list(values),
                "txid": f"{self.identity}-{self.mutation}", "rev": self.mutation}]}]
        last_pull = {"serverRevision": self.rev, "realms": self.realms, "inviteRealms": []}
        body = tson.dumps({"v": 3, "clientIdentity": self.identity, "schema": SCHEMA,
                           "changes": changes, "baseRevs": [], "y": [],
                           "dbID": self.server.db_id if self.rev else tson.UNDEFINED,
                           "lastPull": last_pull if self.rev else tson.UNDEFINED})
        answer = tson.loads(self._post("/sync", body.encode(), "application/tson"))
        self.rev = answer["serverRevision"]
        self.realms = answer["realms"]  # as the addon does: only new realms come whole
        return answer

    def socket_url(self) -> str:
        query = f"v=3&rev={self.rev}&clientId={self.identity}&dxcv=bench"
        if self.token:
            query += f"&token={self.token}"
        return f"ws://127.0.0.1:{self.server.port}{self.path}/changes?{query}"


class DeflateClient(Client):
    """simple-websocket's client, offering permessage-deflate as browsers do."""

    def handshake(self) -> None:
        self.sock.send(self.ws.send(Request(
            host=self.host, target=self.path, subprotocols=self.subprotocols,
            extra_headers=self.extra_headeers, extensions=[PerMessageDeflate()])))
        while True:
            self.ws.receive_data(self.sock.recv(self.receive_bytes))
            event = next(self.ws.events(), None)
            if event is not None:
                break
        if isinstance(event, RejectConnection):
            raise ConnectionError(event.status_code)
        self.connected = True


class Reader:
    """A socket that applies ``changes`` the way the addon does and notes when each arrived."""

    deflate = False

    def __init__(self, device: Device, realms_hash: str) -> None:
        self.device = device
        self.hash = realms_hash
        self.arrived: dict[str, float] = {}  # newRev -> when its message was handled
        self.read: dict[str, float] = {}  # newRev -> when its message was read off the socket
        self.event = Event()
        self.pongs = 0
        self.ws = (DeflateClient if self.deflate else Client).connect(device.socket_url())
        self.read_at = 0.0
        received = self.ws.ws.receive_data  # simple-websocket's reader hands it each read

        def stamped(data: bytes | None) -> None:
            self.read_at = time.perf_counter()
            received(data)

        self.ws.ws.receive_data = stamped
        self._ready()
        self.greenlet = gevent.spawn(self._run)

    def _ready(self) -> None:
        self.ws.send(json.dumps({"type": "ready", "rev": self.device.rev,
                                 "realmSetHash": self.hash}))

    def _run(self) -> None:
        try:
            while True:
                message = json.loads(self.ws.receive())
                if message["type"] == "changes":
                    if message["baseRev"] == self.device.rev:
                        self.device.rev = message["newRev"]
                        self.arrived[message["newRev"]] = time.perf_counter()
                        self.read[message["newRev"]] = self.read_at
                        self.event.set()
                    self._ready()
                elif message["type"] == "realms-changed":
                    self.device.sync()
                    self._ready()
                elif message["type"] == "pong":
                    self.pongs += 1
                    self.event.set()
        except ConnectionClosed:
            pass

    def wait_for(self, rev: str | None = None) -> float:
        """When ``changes`` up to ``rev`` (None: any) arrived."""
        deadline = time.monotonic() + WAIT
        while (rev not in self.arrived) if rev else not self.arrived:
            assert time.monotonic() < deadline, f"{self.device.identity} never got {rev}"
            self.event.wait(0.5)
            self.event.clear()  # a set event would not yield to the other greenlets
        return self.arrived[rev] if rev else min(self.arrived.values())

    def wait_for_next(self, known: int) -> tuple[float, float]:
        """When the ``changes`` after the first ``known`` was read, and when handled."""
        deadline = time.monotonic() + WAIT
        while len(self.arrived) <= known:
            assert time.monotonic() < deadline, f"{self.device.identity} got no changes"
            self.event.wait(0.5)
            self.event.clear()
        rev = list(self.arrived)[known]
        return self.read[rev], self.arrived[rev]

    def ping(self) -> None:
        seen = self.pongs
        self.ws.send('{"type":"ping"}')
        deadline = time.monotonic() + WAIT
        while self.pongs == seen:
            assert time.monotonic() < deadline, "no pong"
            self.event.wait(0.5)
            self.event.clear()

    def close(self) -> None:
        self.ws.close()
        self.greenlet.kill()


def open_idle(server: Server, count: int, prefix: str) -> list[Reader]:
    """``count`` anonymous sockets on the public realm, opened 50 at a time."""
    anonymous = Device(server, f"{prefix}-setup", user=None)
    anonymous.sync()
    readers: list[Reader] = []

    def one(index: int) -> None:
        device = Device(server, f"{prefix}-{index}", user=None)
        device.rev = anonymous.rev
        readers.append(Reader(device, PUBLIC_HASH))

    for start in range(0, count, 50):
        gevent.joinall([gevent.spawn(one, i) for i in range(start, min(count, start + 50))],
                       raise_error=True)
    return readers


# --- the measurements ----------------------------------------------------------------------------


def bench_latency(server: Server, writes: int, pause: float) -> list[Reader]:
    """Prints the latencies; returns the idle sockets, still open."""
    readers = {"same worker": Device(server, "reader-same"),
               "other worker": Device(server, "reader-other")}
    for reader in readers.values():
        reader.sync()
    writer = Device(server, "writer")
    writer.sync()
    home = server.last_sync_worker()
    sockets = {name: place(server, device, want_home=(name == "same worker"), home=home)
               for name, device in readers.items()}
    idle: list[Reader] = []
    print("\nlatency from the end of the writer's /sync answer to the change on the reader")
    print(f"{'other sockets':>14} {'reader':>13} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for others in (1, 100, 1000):
        idle += open_idle(server, others - len(idle), f"idle{others}")
        results: dict[str, list[float]] = {name: [] for name in readers}
        for i in range(writes):
            time.sleep(random.uniform(0, pause))
            key = f"itm{others:04d}{i:06d}{secrets.token_hex(3)}"
            writer.sync(({"id": key, "n": i, "realmId": USER, "owner": USER},))
            answered = time.perf_counter()
            for name, reader in sockets.items():
                results[name].append((reader.wait_for(writer.rev) - answered) * 1000)
        for name, values in results.items():
            print(f"{others:>14} {name:>13} {percentile(values, 50):8.1f} "
                  f"{percentile(values, 99):8.1f} {max(values):8.1f}")
        woken = sum(len(r.arrived) for r in idle)
        assert woken == 0, f"private writes woke {woken} public sockets"
    for reader in sockets.values():
        reader.close()
    return idle


def bench_fanout(server: Server, readers: list[Reader], imports: int) -> None:
    pids = server.worker_pids()
    print(f"\nfan-out: one public import to {len(readers)} sockets, ms until each had its"
          " changes (median, last): read off the socket, handled; CPU ms meanwhile")
    for index in range(imports):
        known = [len(reader.arrived) for reader in readers]
        workers_before, client_before = [server.cpu_ms(pid) for pid in pids], time.process_time()
        started = time.perf_counter()
        import_document(server.services, server.db_id, {"data": {"rlm-public": {"items": {
            f"itmFanOut{index}": {"title": "to everyone"}}}}})
        times = [reader.wait_for_next(count) for reader, count in zip(readers, known, strict=True)]
        read = [(at - started) * 1000 for at, _ in times]
        handled = [(at - started) * 1000 for _, at in times]
        time.sleep(0.5)  # the workers answer the clients' ready
        workers = [server.cpu_ms(pid) - before
                   for pid, before in zip(pids, workers_before, strict=True)]
        client = (time.process_time() - client_before) * 1000
        print(f"read {statistics.median(read):4.0f} {max(read):4.0f}, handled "
              f"{statistics.median(handled):4.0f} {max(handled):4.0f}; CPU: workers "
              f"{' + '.join(f'{ms:.0f}' for ms in workers)}, this client {client:.0f}")
        time.sleep(1)
    for reader in readers:
        reader.close()


def bench_fanout_node(server: Server, imports: int, deflate: bool, sockets: int) -> None:
    """The fan-out with its sockets in one Node process (bench/fanout_client.mjs)."""
    setup = Device(server, "fanout-setup", user=None)
    setup.sync()
    urls = [Device(server, f"fanout-{i}", user=None) for i in range(sockets)]
    for device in urls:
        device.rev = setup.rev
    client = subprocess.Popen(["node", str(ROOT / "bench" / "fanout_client.mjs")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    client.stdin.write(json.dumps({
        "urls": [device.socket_url() for device in urls], "rev": setup.rev,
        "realmSetHash": PUBLIC_HASH, "fanouts": imports, "deflate": deflate}) + "\n")
    client.stdin.flush()
    assert json.loads(client.stdout.readline()) == {"open": sockets}, "sockets not open"
    pids = server.worker_pids()
    print(f"\nfan-out: one public import to {sockets} sockets held by one Node process,"
          " ms until each had its changes (median, last): read off the socket, handled;"
          " CPU ms meanwhile")
    for index in range(imports):
        time.sleep(1)
        before = [server.cpu_ms(pid) for pid in (*pids, client.pid)]
        started = time.time()
        import_document(server.services, server.db_id, {"data": {"rlm-public": {"items": {
            f"itmFanOut{index}": {"title": "to everyone"}}}}})
        line = client.stdout.readline()
        assert line, "the Node client ended early"
        report = json.loads(line)
        assert report["fanout"] == index, report
        read = [at - started * 1000 for at in report["read"]]
        handled = [at - started * 1000 for at in report["handled"]]
        time.sleep(0.5)  # the workers answer the clients' ready
        cpu = [server.cpu_ms(pid) - ms for pid, ms in zip((*pids, client.pid), before,
                                                          strict=True)]
        print(f"read {statistics.median(read):4.0f} {max(read):4.0f}, handled "
              f"{statistics.median(handled):4.0f} {max(handled):4.0f}; CPU: workers "
              f"{' + '.join(f'{ms:.0f}' for ms in cpu[:-1])}, Node client {cpu[-1]:.0f}")
    client.stdin.close()
    client.wait(timeout=WAIT)


def place(server: Server, device: Device, want_home: bool, home: int) -> Reader:
    """A reader socket of ``device`` on the writer's worker (or not): reconnect until it is."""
    for _ in range(40):
        count = len(server.sockets_opened(device.identity))
        reader = Reader(device, USER_HASH)
        deadline = time.monotonic() + WAIT
        while len(opened := server.sockets_opened(device.identity)) == count:
            assert time.monotonic() < deadline, f"no socket of {device.identity} in the log"
            time.sleep(0.05)
        if (opened[-1] == home) == want_home:
            return reader
        reader.close()
    raise RuntimeError("could not place a socket on the wanted worker")


def bench_memory(server: Server, max_sockets: int) -> None:
    (pid,) = server.worker_pids()
    Device(server, "warm-up", user=None).sync()
    time.sleep(0.5)
    before = server.rss_kb(pid)
    idle = open_idle(server, 1000, "mem")
    for reader in idle:
        reader.ping()  # with --deflate, each socket has compressed and decompressed a message
    time.sleep(0.5)
    after = server.rss_kb(pid)
    print(f"\nmemory: worker RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB with 1000 idle"
          f" sockets: {(after - before) / 1000:.1f} KiB per socket")
    held = len(idle)
    while held < max_sockets:
        try:
            idle += open_idle(server, min(500, max_sockets - held), f"cap{held}")
            for reader in idle[-10:]:
                reader.ping()
        except Exception as error:  # the limit: refused, reset, or no answer in time
            print(f"opening more sockets failed at about {held}: {error!r}")
            break
        held = len(idle)
    for reader in idle[:: max(1, len(idle) // 50)]:
        reader.ping()  # a sample of the oldest to the newest still answers
    print(f"capacity: one worker held {held} idle sockets (bound: --max-sockets {max_sockets}),"
          f" RSS {server.rss_kb(pid) / 1024:.1f} MiB")
    for reader in idle:
        reader.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
