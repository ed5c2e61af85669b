"""Checking the signature a client puts on a refresh-token request.

The client signs ``refresh_token + str(time_stamp)`` with RSASSA-PKCS1-v1_5
and SHA-256, using the private key whose public half it sent at login.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

MIN_KEY_BITS = 2048


class BadPublicKey(ValueError):
    """The client sent a public key we cannot use."""


def check_public_key(pem: str) -> str:
    """``pem`` if it is an RSA public key of at least 2048 bits; else :class:`BadPublicKey`."""
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise BadPublicKey("public_key is not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_KEY_BITS:
        raise BadPublicKey(f"public_key must be an RSA key of at least {MIN_KEY_BITS} bits")
    return pem


def verify_refresh_signature(pem: str, refresh_token: str, time_stamp: int, signature: str) -> bool:
    try:
        key = load_pem_public_key(pem.encode())
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, TypeError, binascii.Error):
        return False
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(
            raw, f"{refresh_token}{time_stamp}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True
