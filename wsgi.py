"""The WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``.

A bad setting stops every worker with one line naming it (``create_app``).
"""

from app import create_app
from dxc.replication.supervisor import supervise

app = create_app()
supervise(app.extensions["dxc"])  # replications copying into this installation keep running
app.extensions["dxc"].activity.start()  # this worker's counts reach `flask dxc stats`
