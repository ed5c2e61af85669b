"""The caller of a request, as its access token describes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dxc.auth.scopes import GLOBAL_WRITE


@dataclass(frozen=True)
class Principal:
    """A user, or nobody (``user_id`` None).

    ``email`` (the token's claim) matches invitations, which are addressed
    by e-mail; ``name`` and ``email`` also sign the invitations one sends.
    """

    user_id: str | None
    scopes: frozenset[str] = field(default_factory=frozenset)
    email: str | None = None
    name: str | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    @property
    def global_write(self) -> bool:
        """Such a token (CLI, REST) writes anything, ``rlm-public`` included: it bypasses
        the permission rules (not the structural ones)."""
        return self.user_id is not None and GLOBAL_WRITE in self.scopes

    @property
    def email_key(self) -> str | None:
        """The e-mail as member rows store it: trimmed and lower-cased."""
        return normalise_email(self.email)


def normalise_email(value: Any) -> str | None:
    """The client's own rule for member e-mails: trimmed and lower-cased (None if empty)."""
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


ANONYMOUS = Principal(None)
