"""Keys derived from ``DXC_SECRET``: one secret to configure, one independent key per use.

While the secret is rotated, the previous ones (``DXC_OLD_SECRETS``) still
open what they sealed and verify what they signed; only the current one
seals and signs (docs/security.md, "Rotating DXC_SECRET").
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, MultiFernet


@functools.lru_cache(maxsize=4096)  # every request verifies a token with its database's key
def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for ``purpose``; knowing one derived key reveals no other."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Keyring:
    """The current ``DXC_SECRET`` and the old ones still accepted (never in ``repr``)."""

    current: str = field(repr=False)
    old: tuple[str, ...] = field(default=(), repr=False)

    def key(self, purpose: str) -> bytes:
        """The key that signs for ``purpose`` (the current secret's)."""
        return derive_key(self.current, purpose)

    def keys(self, purpose: str) -> tuple[bytes, ...]:
        """Every key whose signature for ``purpose`` is accepted, the current one first."""
        return tuple(derive_key(secret, purpose) for secret in (self.current, *self.old))

    def fernet(self, purpose: str) -> MultiFernet:
        """Seals what must be stored and read back (a foreign secret) with the current
        key; opens what any accepted key sealed; ``rotate`` reseals with the current key."""
        return MultiFernet([_fernet(key) for key in self.keys(purpose)])

    def current_fernet(self, purpose: str) -> Fernet:
        """Opens only what the current key sealed: tells what ``rotate`` would change."""
        return _fernet(self.key(purpose))


def _fernet(key: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(key))
