"""The keys derived from DXC_SECRET while it is rotated: the current secret seals and
signs, the old ones (DXC_OLD_SECRETS) still open and verify, and none is ever shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import InvalidToken

from dxc.auth.tokens import AccessClaims, ExpiredToken, TokenSigner
from dxc.auth.tokens import InvalidToken as InvalidAccessToken
from dxc.config import ConfigError, load_settings
from dxc.secret_keys import Keyring, derive_key

OLD, NEW, OTHER = "old-secret-" + "o" * 20, "new-secret-" + "n" * 20, "other-" + "x" * 20
CLAIMS = AccessClaims("ann@example.com", frozenset({"ACCESS_DB"}), "prod")


def test_the_current_secret_seals_and_any_listed_one_opens():
    before, rotating, after = Keyring(OLD), Keyring(NEW, (OLD,)), Keyring(NEW)
    sealed_before = before.fernet("shard-url").encrypt(b"value")
    assert rotating.fernet("shard-url").decrypt(sealed_before) == b"value"
    with pytest.raises(InvalidToken):
        after.fernet("shard-url").decrypt(sealed_before)
    with pytest.raises(InvalidToken):  # a purpose is a key of its own
        rotating.fernet("email-channel").decrypt(sealed_before)
    sealed_now = rotating.fernet("shard-url").encrypt(b"value")
    assert after.fernet("shard-url").decrypt(sealed_now) == b"value"
    resealed = rotating.fernet("shard-url").rotate(sealed_before)
    assert after.current_fernet("shard-url").decrypt(resealed) == b"value"
    assert rotating.keys("otp") == (derive_key(NEW, "otp"), derive_key(OLD, "otp"))
    assert rotating.key("otp") == derive_key(NEW, "otp")


def test_tokens_signed_with_an_old_secret_are_accepted_while_it_is_listed():
    old_token = TokenSigner(Keyring(OLD), "https://x", 60).issue("z1", CLAIMS).token
    rotating = TokenSigner(Keyring(NEW, (OLD,)), "https://x", 60)
    assert rotating.verify("z1", old_token).sub == CLAIMS.sub
    new_token = rotating.issue("z1", CLAIMS).token  # signed with the new secret only
    assert TokenSigner(Keyring(NEW), "https://x", 60).verify("z1", new_token).sub == CLAIMS.sub
    with pytest.raises(InvalidAccessToken):
        TokenSigner(Keyring(OLD), "https://x", 60).verify("z1", new_token)
    with pytest.raises(InvalidAccessToken):
        TokenSigner(Keyring(NEW), "https://x", 60).verify("z1", old_token)
    with pytest.raises(InvalidAccessToken):
        TokenSigner(Keyring(NEW, (OTHER,)), "https://x", 60).verify("z1", old_token)
    expired = TokenSigner(Keyring(OLD), "https://x", -3600).issue("z1", CLAIMS).token
    with pytest.raises(ExpiredToken):
        rotating.verify("z1", expired)


def test_old_secrets_are_read_from_the_environment_and_never_shown(tmp_path: Path):
    settings = load_settings(
        {"DXC_SECRET": NEW, "DXC_OLD_SECRETS": f" {OLD} ,, {OTHER}"}, instance_path=tmp_path
    )
    assert settings.old_secrets == (OLD, OTHER)
    assert settings.keyring == Keyring(NEW, (OLD, OTHER))
    for shown in (repr(settings), repr(settings.keyring)):
        assert NEW not in shown and OLD not in shown and OTHER not in shown
    assert load_settings({"DXC_SECRET": NEW}, instance_path=tmp_path).old_secrets == ()
    with pytest.raises(ConfigError) as short:
        load_settings({"DXC_SECRET": NEW, "DXC_OLD_SECRETS": f"{OLD},tiny"},
                      instance_path=tmp_path)
    assert "DXC_OLD_SECRETS" in str(short.value) and "tiny" not in str(short.value)
