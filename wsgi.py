"""The WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from app import create_app
from dxc.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One line naming the bad setting, instead of a traceback per worker.
    raise SystemExit(f"dxc-server: configuration error: {error}") from None
