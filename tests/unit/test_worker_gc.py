"""A gunicorn worker keeps the garbage collector off what it loaded (gunicorn.conf.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = r"""
import gc, json, runpy, types
hooks = runpy.run_path("gunicorn.conf.py")
live = types.SimpleNamespace(drain=lambda: None)
worker = types.SimpleNamespace(
    wsgi=types.SimpleNamespace(extensions={"dxc": types.SimpleNamespace(live=live)}),
    handle_exit=lambda signum, frame: None,
)
loaded = [[] for _ in range(1000)]  # stands for the modules and the app the worker loaded
frozen_before = gc.get_freeze_count()
hooks["post_worker_init"](worker)

class Cycle:
    pass

later = Cycle()
later.itself = later  # made after start-up: a full collection must still free it
del later
print(json.dumps({
    "frozen_before": frozen_before,
    "frozen": gc.get_freeze_count(),
    "freed_later": gc.collect() >= 1,
}))
"""


def test_a_worker_freezes_what_it_loaded_and_still_collects_what_comes_later(tmp_path):
    output = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    ).stdout
    result = json.loads(output)
    assert result["frozen_before"] == 0
    assert result["frozen"] > 1000  # at least the loaded lists, besides the interpreter's own
    assert result["freed_later"]
