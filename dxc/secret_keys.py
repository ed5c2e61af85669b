"""Keys derived from ``DXC_SECRET``: one secret to configure, one independent key per use."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for ``purpose``; knowing one derived key reveals no other."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def fernet(secret: str, purpose: str) -> Fernet:
    """Seals what must be stored and read back (a foreign secret) with a derived key."""
    return Fernet(base64.urlsafe_b64encode(derive_key(secret, purpose)))
