"""A dxc-server seen as a source that keeps no revisions (as Dexie Cloud's own service).

An HTTP proxy in a thread that forwards every request to a running server,
dropping the ``since`` parameter, our extension, from ``/export/stream``: the
answer is then the plain export the ``dexie-cloud`` CLI reads, with no
revisions, which is all another server speaking the Dexie Cloud protocol
offers.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

#: Headers not passed on (hop by hop, or recomputed here).
_DROPPED = {"connection", "keep-alive", "transfer-encoding", "content-length",
            "content-encoding", "host"}


class RevisionlessSource:
    """``url`` forwards to ``upstream`` (``http://host:port``); a context manager."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.export_reads = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RevisionlessSource:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Forward(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qsl(parts.query, keep_blank_values=True)
                if parts.path.endswith("/export/stream"):
                    query = [(name, value) for name, value in query if name != "since"]
                    proxy.export_reads += 1
                url = proxy.upstream + parts.path + ("?" + urlencode(query) if query else "")
                length = int(self.headers.get("Content-Length") or 0)
                answer = requests.request(
                    self.command, url, data=self.rfile.read(length) if length else None,
                    headers={k: v for k, v in self.headers.items() if k.lower() not in _DROPPED},
                    timeout=60,
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in _DROPPED:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        return Forward
