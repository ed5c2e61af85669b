"""gunicorn's master raises the open-files limit its workers need (gunicorn.conf.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = r"""
import json, resource, runpy
warnings = []
class Log:
    def warning(self, message, *args):
        warnings.append(message % args)
raise_limit = runpy.run_path("gunicorn.conf.py")["_raise_open_files_limit"]
raise_limit(Log(), int(__import__("sys").argv[1]))
print(json.dumps({"soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "warnings": warnings}))
"""


def run_with_limits(tmp_path, soft: int, hard: int, wanted: int) -> dict:
    command = f"ulimit -Sn {soft} && ulimit -Hn {hard} && exec {sys.executable} -c \"$0\" {wanted}"
    output = subprocess.run(
        ["bash", "-c", command, SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    ).stdout
    return json.loads(output)


def test_the_soft_limit_is_raised_to_what_the_connections_need(tmp_path):
    assert run_with_limits(tmp_path, 256, 4096, 2000) == {"soft": 2000, "warnings": []}


def test_a_hard_limit_too_low_is_used_whole_and_reported(tmp_path):
    result = run_with_limits(tmp_path, 256, 1024, 2000)
    assert result["soft"] == 1024
    (warning,) = result["warnings"]
    assert "ulimit -n" in warning and "DXC_WORKER_CONNECTIONS" in warning
