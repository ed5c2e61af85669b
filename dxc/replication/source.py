"""The source installation, spoken to as the ``dexie-cloud`` CLI does: its public HTTP API.

Logging in is the CLI's ``connect``: an e-mail one-time password for a
``CONNECT_CLIENT`` token, then ``/clients/connect`` for an API client of the
e-mail's owner, whose ``client_credentials`` tokens read everything
(``GLOBAL_READ``). The data comes from ``/export/stream``; with ``since`` a
dxc-server source streams the changes after a revision as well (any other
source answers with its whole export: :mod:`dxc.replication.full_reads`). Blobs come
from ``/export/blobs?blobIds=…``, Y.js updates from ``/export/yjs?since=…``
(the ``since`` there is a dxc-server extension too). The origin whitelist and
the templates come from the CLI's ``whitelist`` and ``templates pull``
(``MANAGE_DB``, which the owner's API client holds).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from dxc.auth.scopes import ADMIN_SCOPES, CONNECT_CLIENT, GLOBAL_READ, MANAGE_DB

#: Seconds to wait for the source to answer (a stream may take longer in total).
TIMEOUT = 60
#: A token this close to its expiry is renewed before the next request.
RENEW_BEFORE_SECONDS = 120


class SourceError(Exception):
    """The source refused or failed; the message says what it answered."""


@dataclass(frozen=True)
class ClientKey:
    client_id: str
    client_secret: str


def database_url(url: str) -> str:
    """``url`` checked to be ``http(s)://host[/prefix]/<dbId>``, without a trailing slash."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.strip("/"):
        raise SourceError(f"{url} is not a database URL (http://host/<dbId>)")
    return url.rstrip("/")


class Source:
    """One database of another installation."""

    def __init__(self, url: str, session: requests.Session | None = None) -> None:
        self.url = database_url(url)
        self.http = session or requests.Session()
        # Served by the source itself even once it forwards its clients (dxc.api.forward).
        self.http.headers["X-Dxc-Replica"] = "1"
        self._key: ClientKey | None = None
        #: Tokens of the API client by scopes, with their expiry (seconds since the epoch).
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}

    # --- the CLI's e-mail login ---------------------------------------------

    def request_otp(self, email: str) -> str:
        """Ask the source to mail a one-time password to ``email``; its id."""
        answer = self._token_request({
            "grant_type": "otp", "email": email, "scopes": [CONNECT_CLIENT],
        })
        if answer.get("type") != "otp-sent" or not isinstance(answer.get("otp_id"), str):
            raise SourceError(f"{self.url} did not send a one-time password: {_said(answer)}")
        return answer["otp_id"]

    def connect(self, email: str, otp_id: str, otp: str) -> ClientKey:
        """Log in with the code and get an API client of ``email`` there."""
        answer = self._token_request({
            "grant_type": "otp", "email": email, "otp_id": otp_id, "otp": otp.strip(),
            "scopes": [CONNECT_CLIENT],
        })
        if answer.get("type") != "tokens":
            raise SourceError(f"{self.url} refused the login: {_said(answer)}")
        response = self._post("/clients/connect", {}, token=answer["accessToken"])
        key = response.json()
        return ClientKey(key["clientId"], key["clientSecret"])

    # --- reading ---------------------------------------------------------------

    def use_key(self, key: ClientKey) -> None:
        self._key = key
        self._tokens.clear()

    def changes(self, since: int) -> Iterator[bytes]:
        """The lines of ``/export/stream?since=…`` (JSON, not decoded here), as they arrive.
        A source that is not a dxc-server ignores ``since``: its whole export."""
        return self._lines({"since": str(since)})

    def export(self) -> Iterator[bytes]:
        """The lines of the whole ``/export/stream``, as the CLI exports it."""
        return self._lines({})

    def _lines(self, params: dict[str, str]) -> Iterator[bytes]:
        response = self._get("/export/stream", params, stream=True)
        with response:
            for raw in response.iter_lines(chunk_size=256 * 1024):
                if raw:
                    yield raw

    def blobs(self, blob_ids: list[str]) -> Iterator[bytes]:
        """The ``blobs.dcbl`` of ``blob_ids`` (those the source has), as it arrives."""
        yield from self._binary("/export/blobs", {"blobIds": ",".join(blob_ids)})

    def y_updates(self, since: int) -> Iterator[bytes]:
        """The ``yjs.dcyj`` of the Y.js updates after revision ``since``, as it arrives."""
        yield from self._binary("/export/yjs", {"since": str(since)})

    def _binary(self, path: str, params: dict[str, str]) -> Iterator[bytes]:
        response = self._get(path, params, stream=True)
        with response:
            yield from response.iter_content(chunk_size=256 * 1024)

    def logins(self) -> dict[str, Any]:
        """Users, sessions and token key of the database, once it moved
        (``/export/logins``: an owner's token, every admin scope)."""
        token = self._client_token(ADMIN_SCOPES)["accessToken"]
        response = self._checked(self.http.get(
            self.url + "/export/logins", headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        ))
        return response.json()

    def whitelist(self) -> Any:
        """The browser origins the database allows there (the CLI's ``whitelist``
        without an origin: a list of strings)."""
        return self._post("/whitelist", {}, token=self.access_token((MANAGE_DB,))).json()

    def templates(self) -> Any:
        """Every template path there with its content (the CLI's ``templates pull``:
        a list of ``{path, content}``)."""
        return self._get("/templates/pull", {}, scopes=(MANAGE_DB,)).json()

    def sign_in_options(self) -> dict[str, Any]:
        """What the login dialog offers there (the public ``/auth-providers``:
        ``{providers: [{name, type, …}], otpEnabled}``; never a client secret)."""
        return self._checked(
            self.http.get(self.url + "/auth-providers", timeout=TIMEOUT)
        ).json()

    def access_token(self, scopes: tuple[str, ...] = (GLOBAL_READ,)) -> str:
        """A token of the API client with ``scopes``, renewed before it expires."""
        token, expires = self._tokens.get(scopes, (None, 0.0))
        if token is None or time.time() > expires - RENEW_BEFORE_SECONDS:
            answer = self._client_token(scopes)
            token = answer["accessToken"]
            self._tokens[scopes] = token, answer.get("accessTokenExpiration", 0) / 1000
        return token

    def _client_token(self, scopes: tuple[str, ...]) -> dict[str, Any]:
        if self._key is None:
            raise SourceError("no API client of the source to read with")
        answer = self._token_request({
            "grant_type": "client_credentials", "client_id": self._key.client_id,
            "client_secret": self._key.client_secret, "scopes": list(scopes),
        })
        if answer.get("type") != "tokens":
            raise SourceError(f"{self.url} refused the API client: {_said(answer)}")
        return answer

    # --- HTTP ------------------------------------------------------------------

    def _token_request(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._post("/token", body).json()

    def _post(self, path: str, body: dict[str, Any], token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self._checked(
            self.http.post(self.url + path, json=body, headers=headers, timeout=TIMEOUT)
        )

    def _get(
        self, path: str, params: dict[str, str], stream: bool = False,
        scopes: tuple[str, ...] = (GLOBAL_READ,),
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.access_token(scopes)}"}
        return self._checked(self.http.get(
            self.url + path, params=params, headers=headers, timeout=TIMEOUT, stream=stream
        ))

    def _checked(self, response: requests.Response) -> requests.Response:
        if response.status_code != 200:
            text = response.text[:300].strip()
            response.close()
            raise SourceError(f"{response.request.method} {response.url.split('?')[0]}: "
                              f"{response.status_code} {text}")
        return response


def _said(answer: dict[str, Any]) -> str:
    return str(answer.get("message") or answer.get("title") or answer)[:300]
