"""A gunicorn worker keeps the garbage collector off what it loaded, collects its
youngest objects less often, and loads the mail templates' compiler before it serves
(gunicorn.conf.py); a command that sends no mail does not load that compiler."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = r"""
import gc, json, runpy, sys, types
hooks = runpy.run_path("gunicorn.conf.py")
live = types.SimpleNamespace(drain=lambda: None)
worker = types.SimpleNamespace(
    wsgi=types.SimpleNamespace(extensions={"dxc": types.SimpleNamespace(live=live)}),
    handle_exit=lambda signum, frame: None,
)
loaded = [[] for _ in range(1000)]  # stands for the modules and the app the worker loaded
frozen_before = gc.get_freeze_count()
threshold_before = gc.get_threshold()
compiler_before = "pybars" in sys.modules
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
    "threshold_before": threshold_before,
    "threshold": gc.get_threshold(),
    "young": hooks["YOUNG_COLLECTION_THRESHOLD"],
    "compiler_before": compiler_before,
    "compiler": "pybars" in sys.modules,
}))
"""


@pytest.fixture(scope="module")
def started_worker(tmp_path_factory) -> dict:
    """What a worker's garbage collector looks like after ``post_worker_init``."""
    metrics_dir = tmp_path_factory.mktemp("metrics")
    output = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PATH": "/usr/bin:/bin"},
    ).stdout
    return json.loads(output)


def test_a_worker_freezes_what_it_loaded_and_still_collects_what_comes_later(started_worker):
    assert started_worker["frozen_before"] == 0
    assert started_worker["frozen"] > 1000  # at least the loaded lists, besides the interpreter's
    assert started_worker["freed_later"]


def test_a_worker_collects_its_youngest_objects_less_often_and_the_others_as_before(
    started_worker,
):
    young, middle, oldest = started_worker["threshold"]
    assert young == started_worker["young"] > started_worker["threshold_before"][0]
    assert [middle, oldest] == started_worker["threshold_before"][1:]


def test_a_worker_loads_the_mail_compiler_before_it_serves(started_worker):
    assert not started_worker["compiler_before"]
    assert started_worker["compiler"]


def test_the_app_loads_without_the_mail_compiler():
    """Importing it takes a second of CPU: the CLI and the job workers skip it."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, app; print('pybars' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    assert loaded.strip() == "False"
