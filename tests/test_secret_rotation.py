"""Rotating DXC_SECRET (docs/security.md): with the old secret in DXC_OLD_SECRETS
everything sealed or signed under it still works, ``flask dxc reseal`` seals it all
again with the new one, and a value no key opens stops the reseal before any write.

The control database is SQLite or PostgreSQL (``backend``); the shard is PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import insert, select

from dxc.auth.tokens import AccessClaims
from dxc.manage import databases
from dxc.manage.reseal import SEALED
from dxc.replication.job import secret_box
from dxc.storage import schema
from dxc.storage.clock import utcnow
from dxc.storage.replications import SWITCHED
from tests.fake_oidc import CLIENT_SECRET, FakeProvider
from tests.shard_databases import *  # noqa: F403 (the fixtures)
from tests.shard_databases import PASSWORD
from tests.test_auth_http import otp_login, request_otp, sync
from tests.test_oauth_http import add_provider, dxc_auth, round_trip

NEW = "the-new-secret-" + "n" * 32
STRAY = "a-secret-nobody-listed-" + "x" * 32
ANN = "ann@example.com"
SOURCE_KEY = b"k" * 32


@pytest.fixture
def provider():
    fake = FakeProvider()
    yield fake
    fake.close()


def dxc(app: Flask, *args: str) -> Result:
    with app.app_context():
        return app.test_cli_runner().invoke(args=["dxc", *args])


def sealed_values(app: Flask) -> list[Any]:
    """Every sealed value in the control database, in a stable order."""
    with app.extensions["dxc"].control.connect() as connection:
        return [
            sorted(connection.execute(select(s.column).where(s.column.is_not(None))).scalars())
            for s in SEALED
        ]


def add_switched_replication(app: Flask, db_id: str) -> None:
    """A copy that took over: its source's client secret and token key, sealed here."""
    box = secret_box(app.extensions["dxc"])
    with app.extensions["dxc"].control.begin() as connection:
        connection.execute(insert(schema.replications).values(
            db_id=db_id, source_url="https://source.example/zsource", client_id="source-client",
            sealed_secret=box.encrypt(b"source-client-secret").decode(), state=SWITCHED,
            checkpoint=0, copied=0, started=utcnow(), switched=utcnow(),
            token_issuer="https://source.example", token_audience="zsource",
            sealed_token_key=box.encrypt(SOURCE_KEY).decode(),
        ))


def assert_everything_opens(app: Flask, db_id: str, copy_id: str, provider, mailbox) -> None:
    """The shard answers, the provider login, the e-mail channel and the replication
    work: each opened its sealed secret."""
    services = app.extensions["dxc"]
    listing = json.loads(dxc(app, "shards", "--json").output)
    assert {row["name"]: row["health"] for row in listing}["one"] == "ok"
    back = round_trip(app.test_client(), db_id, provider)  # the client secret went to it
    assert back.status_code == 302 and "code" in dxc_auth(back.location), back.location
    assert services.mailer.channel().secret == mailbox.secret
    with services.control.connect() as connection:
        row = connection.execute(
            select(schema.replications).where(schema.replications.c.db_id == copy_id)
        ).one()
    assert secret_box(services).decrypt(row.sealed_secret.encode()) == b"source-client-secret"
    assert services.relocations.foreign_issuer(copy_id).key == SOURCE_KEY


def test_the_old_secret_keeps_working_until_reseal_makes_it_unneeded(
    make_app, settings, shard_database, provider, mailbox
):
    old = settings.secret
    before = make_app()
    assert dxc(before, "add-shard", "one", shard_database()).exit_code == 0
    db_id = databases.create_database(before.extensions["dxc"]).db_id
    copy_id = databases.create_database(before.extensions["dxc"]).db_id
    add_provider(before, db_id, provider)
    before.extensions["dxc"].mailer.configure(mailbox.url, mailbox.secret)
    add_switched_replication(before, copy_id)
    claims = AccessClaims(ANN, frozenset({"ACCESS_DB"}), "prod", ANN)
    old_token = before.extensions["dxc"].signer.issue(db_id, claims).token
    pending = request_otp(before.test_client(), "/" + db_id)  # a code mailed before the switch

    rotating = make_app(secret=NEW, old_secrets=(old,))
    assert_everything_opens(rotating, db_id, copy_id, provider, mailbox)
    client = rotating.test_client()
    assert sync(client, "/" + db_id, old_token).status_code == 200
    verified = client.post(f"/{db_id}/token", json={
        "grant_type": "otp", "email": ANN, "scopes": ["ACCESS_DB"], "otp_id": pending,
        "otp": mailbox.code(ANN),
    })
    assert verified.status_code == 200 and verified.get_json()["type"] == "tokens"
    assert otp_login(client, mailbox, "/" + db_id).status_code == 200  # signed anew
    assert mailbox.bad_signatures == 0

    resealed = dxc(rotating, "reseal")
    assert resealed.exit_code == 0, resealed.output
    for kind in ("shard connection strings", "OAuth client secrets", "e-mail channel secrets",
                 "replication source secrets", "replication token keys"):
        assert f"{kind}: 1 resealed, 0 already sealed with DXC_SECRET" in resealed.output
    assert PASSWORD not in resealed.output and mailbox.secret not in resealed.output

    after = make_app(secret=NEW)  # the old secret is gone
    assert_everything_opens(after, db_id, copy_id, provider, mailbox)
    new_token = rotating.extensions["dxc"].signer.issue(db_id, claims).token
    assert sync(after.test_client(), "/" + db_id, new_token).status_code == 200
    assert sync(after.test_client(), "/" + db_id, old_token).status_code == 401

    stored = sealed_values(after)
    again = dxc(after, "reseal")
    assert again.exit_code == 0 and "OAuth client secrets: 0 resealed, 1 already" in again.output
    assert sealed_values(after) == stored


def test_a_value_no_key_opens_stops_the_reseal_before_any_write(
    make_app, settings, provider, mailbox
):
    before = make_app()
    db_id = databases.create_database(before.extensions["dxc"]).db_id
    before.extensions["dxc"].mailer.configure(mailbox.url, mailbox.secret)
    add_provider(make_app(secret=STRAY), db_id, provider)  # sealed with a secret now lost

    rotating = make_app(secret=NEW, old_secrets=(settings.secret,))
    stored = sealed_values(rotating)
    refused = dxc(rotating, "reseal")
    assert refused.exit_code != 0
    assert f"OAuth provider acme of database {db_id}" in refused.output
    assert "nothing was resealed" in refused.output and "Traceback" not in refused.output
    assert CLIENT_SECRET not in refused.output and mailbox.secret not in refused.output
    assert sealed_values(rotating) == stored  # the channel's secret was not resealed either
