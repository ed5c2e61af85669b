"""``flask dxc init-email-channel`` and ``revoke-sessions``, run as an administrator runs them."""

from __future__ import annotations

import base64
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app import create_app
from dxc.config import load_settings
from dxc.manage import databases
from dxc.manage.importer import import_document
from tests.conftest import free_port, server_environment
from tests.test_cli import flask

ALICE = "alice@demo.local"


def test_email_channel_and_revoked_sessions(database_url, tmp_path):
    env = server_environment(database_url, tmp_path, free_port())
    app = create_app(load_settings(env))
    services = app.extensions["dxc"]
    try:
        databases.migrate(services)
        created = databases.create_database(services)
        import_document(services, created.db_id, {"demoUsers": {ALICE: {}}})

        given = flask(env, tmp_path, "init-email-channel", "https://mail.example/hook",
                      "--secret", "hook-secret")
        assert given.returncode == 0, given.stderr
        channel = services.mailer.channel()
        assert (channel.url, channel.secret) == ("https://mail.example/hook", "hook-secret")
        generated = flask(env, tmp_path, "init-email-channel", "https://mail.example/v2")
        assert generated.returncode == 0, generated.stderr
        assert services.mailer.channel().secret in generated.stdout
        assert flask(env, tmp_path, "init-email-channel", "ftp://x").returncode != 0

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        client = app.test_client()
        path = f"/{created.db_id}/token"
        login = client.post(path, json={
            "grant_type": "demo", "demo_user": ALICE, "scopes": ["ACCESS_DB"], "public_key": pem,
        }).get_json()

        def refresh():
            stamp = int(time.time() * 1000)
            token = login["refreshToken"]
            signature = key.sign(f"{token}{stamp}".encode(), padding.PKCS1v15(), hashes.SHA256())
            return client.post(path, json={
                "grant_type": "refresh_token", "refresh_token": token, "time_stamp": stamp,
                "signature": base64.b64encode(signature).decode(),
            })

        assert refresh().status_code == 200
        other = flask(env, tmp_path, "revoke-sessions", ALICE, "--db",
                      services.settings.database_url_for("zother123"))
        assert other.returncode == 0 and "Revoked 0 sessions" in other.stdout
        assert refresh().status_code == 200
        revoked = flask(env, tmp_path, "revoke-sessions", ALICE.upper(), "--db", created.url)
        assert revoked.returncode == 0, revoked.stderr
        assert "Revoked 1 session of" in revoked.stdout
        assert refresh().status_code == 401
    finally:
        services.control.dispose()
