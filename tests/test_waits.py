"""A sync that holds a revision lock waits for PostgreSQL without yielding, briefly.

Run in a gevent-patched child process, as a gunicorn worker is: one greenlet
runs short queries, another ticks every millisecond. Inside ``holding_lock``
the ticker must not run between the queries; outside it, and once a wait
lasts longer than ``BLOCK_AT_MOST``, it must.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = r"""
from gevent import monkey
monkey.patch_all()
import json, sys, time
import gevent, psycopg2
from dxc.storage import waits

waits.install()
connection = psycopg2.connect(sys.argv[1])
connection.autocommit = True
cursor = connection.cursor()
ticks = []

def ticker():
    while True:
        ticks.append(time.monotonic())
        gevent.sleep(0.001)

def ticks_during(query, times, hold):
    gevent.sleep(0.01)  # the ticker is going
    started = time.monotonic()
    if hold:
        with waits.holding_lock():
            for _ in range(times):
                cursor.execute(query)
    else:
        for _ in range(times):
            cursor.execute(query)
    ended = time.monotonic()
    return sum(started < tick < ended for tick in ticks)

gevent.spawn(ticker)
print(json.dumps({
    "held": ticks_during("SELECT pg_sleep(0.005)", 6, hold=True),
    "free": ticks_during("SELECT pg_sleep(0.005)", 6, hold=False),
    "long": ticks_during("SELECT pg_sleep(0.3)", 1, hold=True),
}))
"""


def test_a_lock_holder_does_not_yield_between_its_queries(database_url_postgresql):
    output = subprocess.run(
        [sys.executable, "-c", SCRIPT, database_url_postgresql.replace("+psycopg2", "")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    ticks = json.loads(output)
    assert ticks["held"] == 0  # the worker served nobody else while the lock was held
    assert ticks["free"] > 5  # a query without the lock lets the others run
    assert ticks["long"] > 5  # after 50 ms the holder yields after all: no frozen worker
