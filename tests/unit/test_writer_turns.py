"""A worker's writers of one database take turns (dxc.storage.waits.turn): in the
order they came, waiting on the event loop, in a gevent-patched process as a
gunicorn worker is."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = r"""
import json
from dxc.storage import waits  # imported before patching, as a worker does
with waits.turn("zdb1"):  # and used there: the turns made then are threads' locks
    pass
from gevent import monkey
monkey.patch_all()
import gevent

events = []

def writer(name, db):
    with waits.turn(db):
        events.append(f"{name} in")
        with waits.turn(db):  # a nested write of the same database goes on
            gevent.sleep(0.02)
        events.append(f"{name} out")

def bystander():
    for _ in range(3):
        events.append("tick")
        gevent.sleep(0.005)

greenlets = [gevent.spawn(writer, name, "zdb1") for name in "abc"]
greenlets.append(gevent.spawn(bystander))
gevent.joinall(greenlets, timeout=5)
print(json.dumps(events))
"""


def test_writers_of_a_database_take_turns_in_order_without_blocking_the_worker():
    events = json.loads(subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True,
        timeout=60,
    ).stdout)
    writers = [event for event in events if event != "tick"]
    assert writers == ["a in", "a out", "b in", "b out", "c in", "c out"]
    # the others wait on the loop: the bystander ran while "a" held the turn
    assert events.index("tick", events.index("a in")) < events.index("a out")
    assert events.count("tick") == 3
