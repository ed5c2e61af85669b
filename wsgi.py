"""The WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``.

A bad setting stops every worker with one line naming it (``create_app``).
"""

from app import create_app

app = create_app()
