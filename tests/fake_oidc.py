"""A small OpenID Connect provider for in-process tests of the OAuth broker.

It serves discovery, JWKS, a token endpoint and userinfo over real HTTP
(the broker talks to it through Authlib and requests, as to Google). The
browser step is skipped: :meth:`FakeProvider.approve` plays the user who
logs in and returns the code the provider would hand to the callback. The
token endpoint checks the client's secret, the redirect URI and the PKCE
verifier; tests change ``tamper`` to make it misbehave.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "dxc-test-client"
CLIENT_SECRET = "fake-provider-secret-0123456789"


class FakeProvider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        self.grants: dict[str, dict[str, Any]] = {}
        self.token_requests = 0
        #: Changes to the ID token's claims (``{"nonce": "x"}``), or ``{"error": …}``
        #: to make the token endpoint refuse.
        self.tamper: dict[str, Any] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def approve(
        self, authorization_url: str, email: str, email_verified: bool = True,
        name: str = "Ann Example",
    ) -> tuple[str, str]:
        """The user logs in at ``authorization_url``: the (code, state) for the callback."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        assert authorization_url.startswith(self.issuer + "/authorize?")
        assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.grants[code] = {
            **query, "email": email, "email_verified": email_verified, "name": name,
        }
        return code, query["state"]

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    def _token(self, headers: Any, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests += 1
        if "error" in self.tamper:
            return 400, {"error": self.tamper["error"], "error_description": "tampered"}
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if headers.get("Authorization") != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()
        ).decode().rstrip("=")
        if challenge != grant["code_challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        now = int(time.time())
        claims = {
            "iss": self.issuer, "aud": CLIENT_ID, "sub": "sub-" + grant["email"],
            "iat": now, "exp": now + 300, "nonce": grant.get("nonce"),
            "email": grant["email"], "email_verified": grant["email_verified"],
            "name": grant["name"], **self.tamper,
        }
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)
        return 200, {
            "access_token": "at-" + secrets.token_urlsafe(8), "token_type": "Bearer",
            "expires_in": 300, "id_token": id_token,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/.well-known/openid-configuration":
                    self._answer(200, provider.metadata())
                elif path == "/jwks":
                    self._answer(200, {"keys": [provider.key.as_dict(private=False)]})
                else:
                    self._answer(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {
                    k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()
                }
                if urlsplit(self.path).path == "/token":
                    self._answer(*provider._token(self.headers, form))
                else:
                    self._answer(404, {"error": "not_found"})

        return Handler
