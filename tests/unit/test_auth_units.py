"""The small pure parts of authentication: timespans, codes, policies, their settings,
access tokens."""

from __future__ import annotations

import time

import pytest

from dxc.auth.durations import BadDuration, to_seconds
from dxc.auth.otp import ALPHABET, CODE_LENGTH, is_email, new_code, normalize_code
from dxc.auth.policy import may_create_databases
from dxc.auth.tokens import (
    LEEWAY_SECONDS,
    AccessClaims,
    ExpiredToken,
    InvalidToken,
    TokenSigner,
)
from dxc.config import ConfigError, load_settings
from dxc.secret_keys import Keyring


@pytest.mark.parametrize("text, seconds", [
    ("2h", 7200), ("1.5 days", 129600), ("90s", 90), ("15m", 900), ("100", 0.1),
    ("-1m", -60), ("1 week", 604800), ("2y", 2 * 365.25 * 86400), ("5 MINUTES", 300),
    (".5h", 1800), (60, 60), (1.5, 1.5),
])
def test_ms_grammar(text, seconds):
    assert to_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "soon", "", "1 fortnight", "1" * 101, True, None, "h", "1h2m", float("nan"), float("inf"),
    "101y", 1e300,
])
def test_ms_grammar_refuses(text):
    with pytest.raises(BadDuration):
        to_seconds(text)


def test_codes_avoid_look_alikes():
    assert not set("01IO") & set(ALPHABET)
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) for c in codes)
    assert normalize_code(" abcd-2345 ") == "ABCD2345"


def test_emails_as_the_client_checks_them():
    assert is_email("ann@example.com") and is_email("a.b+c@mail.example.co")
    assert not is_email("ann@localhost") and not is_email("ann") and not is_email("a b@c.de")


def test_create_db_policy():
    assert may_create_databases(None, "anyone@example.com")
    assert not may_create_databases((), "anyone@example.com")
    allowed = ("boss@example.com", "@corp.example")
    assert may_create_databases(allowed, "Boss@Example.com")
    assert may_create_databases(allowed, "dev@corp.example")
    assert not may_create_databases(allowed, "dev@example.com")


def test_auth_settings():
    dev = load_settings({"DXC_SECRET": "x" * 20})
    assert dev.create_db_emails is None and dev.otp_ttl == 600 and dev.otp_max_attempts == 5
    prod = load_settings({"DXC_SECRET": "x" * 20, "DXC_ENV": "production"})
    assert prod.create_db_emails == ()
    listed = load_settings({
        "DXC_SECRET": "x" * 20, "DXC_CREATE_DB_EMAILS": " Boss@Example.com, @corp.example ",
        "DXC_JOB_RETRY_DELAYS": "0.5,2", "DXC_OTP_TTL": "120",
    })
    assert listed.create_db_emails == ("boss@example.com", "@corp.example")
    assert listed.job_retry_delays == (0.5, 2.0) and listed.otp_ttl == 120
    for bad in ({"DXC_JOB_RETRY_DELAYS": "1,x"}, {"DXC_JOB_RETRY_DELAYS": "-1"},
                {"DXC_OTP_MAX_ATTEMPTS": "0"}):
        with pytest.raises(ConfigError):
            load_settings({"DXC_SECRET": "x" * 20, **bad})


def test_a_token_verified_before_still_expires_and_stays_bound_to_its_database(monkeypatch):
    """Verified signatures are remembered (a device sends the same token all hour);
    the expiry and the audience are still decided at every request."""
    signer = TokenSigner(Keyring("s" * 32), "https://x", 60)
    token = signer.issue("z1", AccessClaims("ann", frozenset({"ACCESS_DB"}), "prod")).token
    assert signer.verify("z1", token).sub == "ann"
    assert signer.verify("z1", token).sub == "ann"
    with pytest.raises(InvalidToken):
        signer.verify("z2", token)
    later = time.time() + 60 + LEEWAY_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(ExpiredToken):
        signer.verify("z1", token)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(InvalidToken):
        signer.verify("z1", forged)
