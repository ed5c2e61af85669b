"""gunicorn builds its access-log lines only when its access log is asked for
(gunicorn.conf.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = r"""
import json, runpy, sys, types
from gunicorn.config import Config
hooks = runpy.run_path("gunicorn.conf.py")
config = Config()
for name in ("logconfig_dict", "logger_class", "accesslog"):
    config.set(name, hooks[name])
if sys.argv[1] == "on":
    config.set("accesslog", "-")
logger = config.logger_class(config)
built = []
logger.atoms = lambda *args: built.append(1) or {}
logger.access(types.SimpleNamespace(), types.SimpleNamespace(), {}, None)
print(json.dumps({"enabled": logger.access_log_enabled, "built": len(built)}))
"""


def access_log(tmp_path, switch: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", SCRIPT, switch], cwd=ROOT, capture_output=True, text=True,
        check=True, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def test_no_access_log_builds_no_access_line(tmp_path):
    assert access_log(tmp_path, "off") == {"enabled": False, "built": 0}


def test_an_access_log_asked_for_gets_its_lines(tmp_path):
    assert access_log(tmp_path, "on") == {"enabled": True, "built": 1}
