"""The WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``.

A bad setting stops every worker with one line naming it (``create_app``), and
so does a bus that cannot work where it is configured (``Bus.check``).
"""

import sys

from app import create_app
from dxc.bus.base import BusUnusable
from dxc.replication.supervisor import supervise

#: gunicorn's exit status for "the worker failed to boot": the arbiter stops, not respawns.
WORKER_BOOT_ERROR = 3

app = create_app()
try:
    app.extensions["dxc"].bus.check()
except BusUnusable as error:
    print(f"dxc-server: configuration error: {error}", file=sys.stderr)
    raise SystemExit(WORKER_BOOT_ERROR) from None
supervise(app.extensions["dxc"])  # replications copying into this installation keep running
app.extensions["dxc"].activity.start()  # this worker's counts reach `flask dxc stats`
