"""Keys derived from ``DXC_SECRET``: one secret to configure, one independent key per use."""

from __future__ import annotations

import hashlib
import hmac


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for ``purpose``; knowing one derived key reveals no other."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()
