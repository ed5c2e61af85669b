"""A static web server for the browser tests' app pages and the npm packages they load."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.e2e.runner import E2E


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def static_site(folder: Path, page: str) -> Iterator[int]:
    """Serve ``tests/e2e/browser/<page>`` as ``/`` and ``node_modules``, from ``folder``
    on a port of its own (another origin than the sync server); yields the port."""
    folder.mkdir()
    shutil.copy(E2E / "browser" / page, folder / "index.html")
    (folder / "node_modules").symlink_to(E2E / "node_modules")
    site = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        yield site.server_address[1]
    finally:
        site.shutdown()
        site.server_close()
