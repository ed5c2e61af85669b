"""Blob uploads against the real gunicorn + gevent server: the size limit with and without a
Content-Length, chunked bodies, and a worker that keeps serving meanwhile. SQLite only: the
HTTP handling does not depend on the database (the stores are tested on both elsewhere)."""

from __future__ import annotations

import secrets

import pytest
import requests

from dxc.auth.tokens import AccessClaims

USER = "alice@demo.local"
LIMIT = 1024 * 1024


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"DXC_MAX_BLOB_BYTES": str(LIMIT), "REDIS_URL": ""}


def test_limits_and_chunked_uploads_on_the_real_server(server):
    url = server.create_database(demo_users=(USER,))
    db_id = url.rsplit("/", 1)[1]
    claims = AccessClaims(USER, frozenset({"ACCESS_DB"}), "demo", USER, None)
    auth = {"Authorization": f"Bearer {server.services.signer.issue(db_id, claims).token}"}

    def put(body, **headers):
        blob = "".join(secrets.choice("abcdefXYZ019_|") for _ in range(24))
        return requests.put(f"{url}/blob/{blob}", data=body, timeout=30,
                            headers={**auth, **headers})

    def pieces(total: int):
        for _ in range(total // 65536):
            yield b"z" * 65536

    too_big = put(b"x" * (LIMIT + 1))
    assert too_big.status_code == 413 and too_big.json()["error"] == "request_entity_too_large"
    chunked_too_big = put(pieces(LIMIT * 2))  # no Content-Length: refused while reading
    assert chunked_too_big.status_code == 413, chunked_too_big.text
    chunked = put(pieces(LIMIT), **{"Content-Type": "text/plain"})
    assert chunked.status_code == 200, chunked.text
    back = requests.get(f"{url}/blob/{chunked.json()['ref']}", headers=auth, timeout=30)
    assert back.content == b"z" * LIMIT and back.headers["Content-Type"] == "text/plain"
    assert requests.put(f"{url}/blob/{'a' * 24}", data=b"x", timeout=30).status_code == 401
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
    assert "Traceback" not in server.log()
