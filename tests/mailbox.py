"""A web-hook receiver for the e-mail channel, as a test's inbox.

It checks every delivery's signature, can fail the first deliveries (to
exercise retries), and serves what it received at ``GET /mails?to=…`` so
that Node scenarios can read their one-time passwords too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SIGNATURE_HEADER = "X-Dxc-Signature"
OTP_IN_TEXT = re.compile(r"OTP: ([A-Z0-9]{8})")


class Mailbox:
    def __init__(self, secret: str = "mailbox-secret", failures: int = 0) -> None:
        self.secret = secret
        self.failures = failures  # answer this many deliveries with a 500
        self.attempts = 0
        self.bad_signatures = 0
        self.mails: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def mails_to(self, to: str) -> list[dict[str, Any]]:
        with self._lock:
            return [mail for mail in self.mails if mail["to"] == to]

    def wait_for_mail(self, to: str, count: int = 1, timeout: float = 60) -> dict[str, Any]:
        """The ``count``-th mail to ``to``, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails = self.mails_to(to)
            if len(mails) >= count:
                return mails[count - 1]
            time.sleep(0.02)
        raise AssertionError(f"no mail #{count} to {to} within {timeout} s")

    def code(self, to: str, count: int = 1) -> str:
        """The one-time password in the ``count``-th mail to ``to``."""
        match = OTP_IN_TEXT.search(self.wait_for_mail(to, count)["text"])
        assert match, "the mail has no 'OTP: XXXXXXXX' line"
        return match.group(1)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        mailbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = "sha256=" + hmac.new(
                    mailbox.secret.encode(), body, hashlib.sha256
                ).hexdigest()
                with mailbox._lock:
                    mailbox.attempts += 1
                    if not hmac.compare_digest(expected, self.headers.get(SIGNATURE_HEADER, "")):
                        mailbox.bad_signatures += 1
                        status = 401
                    elif mailbox.failures > 0:
                        mailbox.failures -= 1
                        status = 500
                    else:
                        mailbox.mails.append(json.loads(body))
                        status = 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                to = parse_qs(urlsplit(self.path).query).get("to", [""])[0]
                answer = json.dumps(mailbox.mails_to(to)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return Handler
