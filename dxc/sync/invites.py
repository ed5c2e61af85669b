"""Mailing invitations, once the transaction that made them is committed.

A member row with ``invite: true`` and an e-mail is an invitation to mail
(template ``invite``). The mail goes out through the installation's e-mail
channel as a background job; without a channel it is only logged, and the
invitee still finds the invitation in the app (``db.cloud.invites``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dxc.mail import Mailer, render

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Invitation:
    member_id: str
    email: str
    name: str | None  #: the invitee's, if the inviter gave one
    realm_id: str
    realm_name: str | None
    represents: str | None
    inviter_name: str | None
    inviter_email: str | None


class InviteMailer:
    def __init__(self, mailer: Mailer, public_url: str) -> None:
        self.mailer = mailer
        self.public_url = public_url.rstrip("/")

    def __call__(self, db_id: str, invitations: Sequence[Invitation]) -> None:
        """Queue one mail per invitation; never raises (the invitations are committed)."""
        if not invitations:
            return
        try:
            channel = self.mailer.channel()
            if channel is None:
                log.warning(
                    "no e-mail channel: %d invitation(s) in %s not mailed "
                    "(set one with `flask dxc init-email-channel URL`)",
                    len(invitations),
                    db_id,
                )
                return
            for invitation in invitations:
                self.mailer.send(
                    channel, render("invite", invitation.email, self._variables(db_id, invitation))
                )
        except Exception:
            log.exception("could not mail %d invitation(s) in %s", len(invitations), db_id)

    def _variables(self, db_id: str, invitation: Invitation) -> dict[str, Any]:
        return {
            "recipientName": invitation.name,
            "recipientEmail": invitation.email,
            "realmId": invitation.realm_id,
            "realmName": invitation.realm_name,
            "represents": invitation.represents,
            "inviterName": invitation.inviter_name,
            "inviterEmail": invitation.inviter_email,
            "databaseUrl": f"{self.public_url}/{db_id}",
        }
