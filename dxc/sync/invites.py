"""Mailing invitations, once the transaction that made them is committed.

A member row with ``invite: true`` and an e-mail is an invitation to mail,
rendered from the database's ``invite-*`` templates. The mail goes out
through the installation's e-mail channel as a background job; without a
channel it is only logged, and the invitee still finds the invitation in the
app (``db.cloud.invites``).

The app the inviter used (``app.*`` of the templates) is the Origin of the
request that committed the invitation: the HTTP layer puts it in
:data:`request_origin`. This server has no page to accept an invitation on,
so ``acceptUrl`` and ``rejectUrl`` both open the app (or, without an Origin,
the database URL), where ``db.cloud.invites`` offers the choice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from dxc.mail import Mailer, is_web_origin, origin_name

log = logging.getLogger(__name__)

#: The Origin header of the request being served (None outside a request or without one).
request_origin: ContextVar[str | None] = ContextVar("request_origin", default=None)


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
    #: Further properties of the realm row, for ``realm.<property>`` in templates.
    realm_props: Mapping[str, Any] = field(default_factory=dict)


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
            origin = request_origin.get()
            for invitation in invitations:
                variables = self.variables(db_id, invitation, origin)
                self.mailer.send(
                    channel, self.mailer.compose(db_id, "invite", invitation.email, variables)
                )
        except Exception:
            log.exception("could not mail %d invitation(s) in %s", len(invitations), db_id)

    def variables(
        self, db_id: str, invitation: Invitation, origin: str | None
    ) -> dict[str, Any]:
        """The ``invite-*`` templates' variables (B8 of the spec, ``recepient`` spelling kept)."""
        database_url = f"{self.public_url}/{db_id}"
        web = is_web_origin(origin)
        app_url = origin if origin and origin_name(origin, "") else database_url  # has a host
        realm = {
            key: value for key, value in invitation.realm_props.items()
            if isinstance(value, str | int | float | bool) or value is None
        }
        realm.update(
            realmId=invitation.realm_id,
            name=invitation.realm_name or invitation.represents or invitation.realm_id,
            represents=invitation.represents,
        )
        return {
            "recepient": _person(invitation.name, invitation.email),
            "invitor": _person(invitation.inviter_name, invitation.inviter_email),
            "realm": realm,
            "app": {"name": origin_name(origin, database_url), "url": app_url, "isWebPage": web},
            "acceptUrl": app_url,
            "rejectUrl": app_url,
            "databaseUrl": database_url,
        }


def _person(name: str | None, email: str | None) -> dict[str, Any]:
    """``name``, ``firstName``, ``lastName`` and ``email``; the e-mail stands in for a name."""
    shown = (name or "").strip() or email or "Someone"
    first, _, last = shown.partition(" ")
    return {"name": shown, "firstName": first, "lastName": last.strip(), "email": email}
