"""A client that speaks the sync protocol like dexie-cloud-addon, for HTTP-level tests."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from dxc import tson
from dxc.tson import UNDEFINED

SCHEMA = {
    "items": {"generatedGlobalId": True, "idPrefix": "itm", "markedForSync": True},
    "realms": {"generatedGlobalId": True, "idPrefix": "rlm", "markedForSync": True},
    "members": {"generatedGlobalId": True, "idPrefix": "mmb", "markedForSync": True},
    "roles": {"markedForSync": True},
    "$jobs": {},
    "$syncState": {},
}
ALICE = "alice@demo.local"
BOB = "bob@demo.local"


class Device:
    """One client database, speaking the protocol like dexie-cloud-addon."""

    def __init__(self, client, db_url: str, identity: str) -> None:
        self.client = client
        self.path = "/" + db_url.rsplit("/", 1)[1]
        self.db_id = self.path[1:]
        self.identity = identity
        self.token: str | None = None
        self.last_pull: Any = UNDEFINED
        self.state: dict[str, dict[str, Any]] = {}
        self.mutation_rev = 0
        self.schema: dict[str, Any] = SCHEMA

    def login(self, user: str, public_key: str | None = None) -> dict[str, Any]:
        body = {"grant_type": "demo", "demo_user": user, "scopes": ["ACCESS_DB"]}
        if public_key:
            body["public_key"] = public_key
        answer = self.client.post(f"{self.path}/token", json=body).get_json()
        self.token = answer["accessToken"]
        return answer

    def post_sync(
        self,
        changes: list[dict[str, Any]],
        base_revs=None,
        raw: bytes | None = None,
        y: list[dict[str, Any]] | None = None,
    ):
        body = raw or tson.dumps(
            {
                "v": 3,
                "dbID": self.db_id if self.last_pull is not UNDEFINED else UNDEFINED,
                "clientIdentity": self.identity,
                "schema": self.schema,
                "lastPull": self.last_pull,
                "baseRevs": base_revs or [],
                "changes": changes,
                "y": y or [],
                "dxcv": "4.4.14",
            }
        ).encode()
        headers = {"Content-Type": "application/tson"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.client.post(f"{self.path}/sync", data=body, headers=headers)

    def sync(
        self, changes: list[dict[str, Any]] = (), base_revs=None, y: list[dict] | None = None
    ) -> dict[str, Any]:
        response = self.post_sync(list(changes), base_revs, y=y)
        assert response.status_code == 200, response.get_data(as_text=True)
        answer = tson.loads(response.get_data())
        self.write_locally(changes)
        self.apply(answer)
        return answer

    def write_locally(self, changes: Sequence[dict[str, Any]]) -> None:
        """What the real client stored before it pushed ``changes``: the values it
        inserted or put (the server does not echo a row stored as it was sent)."""
        for entry in changes:
            for mut in entry.get("muts") or ():
                keys, values = mut.get("keys"), mut.get("values")
                if mut.get("type") in ("insert", "upsert") and isinstance(values, list):
                    table = self.state.setdefault(entry["table"], {})
                    table.update(zip(keys, values, strict=False))

    def apply(self, answer: dict[str, Any]) -> None:
        for entry in answer["changes"]:
            table = self.state.setdefault(entry["table"], {})
            for mut in entry["muts"]:
                for index, key in enumerate(mut["keys"]):
                    if mut["type"] == "delete":
                        table.pop(key, None)
                    else:
                        assert mut["type"] == "upsert", mut
                        table[key] = mut["values"][index]
        self.last_pull = {
            "serverRevision": answer["serverRevision"],
            "yServerRevision": _y_server_revision(answer),
            "realms": answer["realms"],
            "inviteRealms": answer["inviteRealms"],
        }

    def op(self, table: str, kind: str, keys: list[str], txid: str, **fields: Any) -> dict:
        self.mutation_rev += 1
        mut = {"type": kind, "keys": keys, "txid": txid, "rev": self.mutation_rev, **fields}
        return {"table": table, "muts": [mut]}


def _y_server_revision(answer: dict[str, Any]) -> str:
    """The client's yServerRevision after ``answer`` (applyYServerMessages)."""
    revision = answer["serverRevision"]
    for message in answer.get("yMessages", []):
        if message["type"] == "u-s" and message.get("r"):
            revision = message["r"]
        elif message["type"] == "y-complete-sync-done":
            revision = message["yServerRev"]
    return revision


def item(key: str, owner: str = ALICE, realm: str | None = None, **fields: Any) -> dict:
    return {"id": key, "owner": owner, "realmId": realm or owner, **fields}


def refresh_body(key: rsa.RSAPrivateKey, token: str, stamp: int | None = None) -> dict[str, Any]:
    """A ``refresh_token`` request signed like the client signs it."""
    stamp = stamp or int(time.time() * 1000)
    signature = key.sign(f"{token}{stamp}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "scopes": ["ACCESS_DB"],
        "signature": base64.b64encode(signature).decode(),
        "signing_algorithm": "RSASSA-PKCS1-v1_5",
        "time_stamp": stamp,
    }
