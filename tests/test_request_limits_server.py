"""gunicorn's request limits on the real server (gunicorn.conf.py, docs/operations.md).

gunicorn parses the request line and headers before the app runs: the real
client's socket URL, which carries its access token, must fit, and what does
not fit (or does not parse) is refused with the JSON error every other
answer has, not gunicorn's HTML page. The limits do not depend on the
database, so these run on SQLite only.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from dxc.auth.tokens import AccessClaims
from dxc.protocol.live import realm_set_hash
from tests.test_live_server import USER, Socket, db_id_of, socket_url

#: gunicorn.conf.py's limit_request_line and limit_request_field_size.
LIMIT = 8190


def request_line(length: int) -> bytes:
    """``GET /health?q=aaa… HTTP/1.1`` of exactly ``length`` bytes."""
    start, end = b"GET /health?q=", b" HTTP/1.1"
    return start + b"a" * (length - len(start) - len(end)) + end


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def db_url(server) -> str:
    return server.create_database(demo_users=(USER,))


def raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as it is; the status, headers and body of the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    return int(status_line.split()[1]), headers, body


def test_a_socket_url_with_a_long_token_is_accepted(server, db_url):
    """A token with long non-ASCII claims: a request line above gunicorn's default 4094."""
    claims = AccessClaims(USER, frozenset({"ACCESS_DB"}), "demo", USER, "Zoë " * 450)
    token = server.services.signer.issue(db_id_of(db_url), claims).token
    url = socket_url(db_url, token=token, rev="1:0")
    assert 4094 < len(urlsplit(url).path) + len(urlsplit(url).query) < LIMIT - 100
    client = Socket(url)
    assert client.status == 101
    mine = realm_set_hash(["rlm-public", USER])
    client.send({"type": "ready", "rev": "1:0", "realmSetHash": mine})
    client.round_trip()  # a refused token would get {"type": "error"} and a close instead
    client.close()


@pytest.mark.parametrize(("request_head", "status", "error"), [
    (request_line(LIMIT + 1) + b"\r\nHost: h\r\n", 414, "uri_too_long"),
    (b"GET /health HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * LIMIT + b"\r\n", 431,
     "request_header_fields_too_large"),
    (b"GET /health HTTP/1.1\r\nHost: h\r\n" + b"".join(
        b"X-H%d: 1\r\n" % n for n in range(101)), 431, "request_header_fields_too_large"),
    (b"GET /health HTTP/9.9\r\nHost: h\r\n", 400, "bad_request"),
])
def test_what_gunicorn_refuses_is_answered_in_json(server, request_head, status, error):
    answer_status, headers, body = raw(server.url, request_head + b"\r\n")
    assert answer_status == status
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    answer = json.loads(body)
    assert answer["error"] == error and answer["message"]


def test_a_request_at_the_limits_is_served(server):
    fill = b"X-Fill: " + b"a" * (LIMIT - len(b"X-Fill: \r\n")) + b"\r\n"  # CRLF counts
    status, _, body = raw(server.url, request_line(LIMIT) + b"\r\nHost: h\r\n"
                          b"Connection: close\r\n" + fill * 98 + b"\r\n")
    assert status == 200, body
