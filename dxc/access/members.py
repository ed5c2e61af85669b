"""Member rows: their state, who they stand for, and the fields only the server sets.

A member row is *active* once accepted (and not rejected later), *pending*
before, *rejected* after the invitee declined. Acceptance is the invitee's
alone; the times, ``userId`` on acceptance, ``invitedBy`` and
``invitedDate`` are stamped by the server whatever the client sent (A7.2).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dxc import tson
from dxc.access.principal import Principal, normalise_email
from dxc.access.rejections import PermissionDenied
from dxc.tson import UNDEFINED, Date

MEMBERS_TABLE = "members"
ACTIVE, PENDING, REJECTED = "active", "pending", "rejected"
#: Fields the server sets; a client's values for them are ignored.
SYSTEM_FIELDS = ("invitedBy", "invitedDate")
ACCEPTANCE_FIELDS = ("accepted", "rejected")


def _present(value: Any) -> bool:
    return value is not None and value is not UNDEFINED and value is not False


def state_of(member: dict[str, Any]) -> str:
    """``active``, ``pending`` or ``rejected``; a later rejection undoes an acceptance."""
    accepted, rejected = member.get("accepted"), member.get("rejected")
    if not _present(accepted):
        return REJECTED if _present(rejected) else PENDING
    if not _present(rejected):
        return ACTIVE
    if isinstance(accepted, Date) and isinstance(rejected, Date):
        return ACTIVE if accepted.epoch_ms >= rejected.epoch_ms else REJECTED
    return ACTIVE


def stands_for(member: dict[str, Any], principal: Principal) -> bool:
    """Is the row the principal's own: its ``userId``, or its e-mail while ``userId`` is unset."""
    user_id = member.get("userId")
    if isinstance(user_id, str) and user_id:
        return user_id == principal.user_id
    email = normalise_email(member.get("email"))
    return email is not None and email == principal.email_key


def server_date(now: datetime) -> Date:
    return Date.from_epoch_ms(now.timestamp() * 1000 // 1)


@dataclass(frozen=True)
class MemberWrite:
    """What the server made of a member row the client wrote."""

    #: Properties the server set itself: the permission rules do not judge them.
    server_set: frozenset[str] = frozenset()
    #: The row is (now) an invitation to mail.
    send_invite: bool = False


def prepare_new(value: dict[str, Any], principal: Principal, now: datetime) -> MemberWrite:
    """Normalise a new member row and stamp what only the server sets.

    A row for oneself is accepted at once (it still needs ``add`` on
    ``members``: nobody joins a realm on their own). A row for someone else
    is an invitation: pending, signed with ``invitedBy``/``invitedDate``.
    """
    _normalise(value)
    for name in SYSTEM_FIELDS:
        value.pop(name, None)
    if not value.get("userId") and not value.get("email"):
        value["userId"] = principal.user_id
    if principal.global_write and state_of(value) != PENDING:
        _stamp(value, state_of(value), now)  # REST-style `accepted: true` becomes a time
        return MemberWrite()
    own = value.get("userId") == principal.user_id
    _stamp(value, ACTIVE if own else PENDING, now)
    if own:
        return MemberWrite()
    value["invitedBy"] = {
        "name": principal.name,
        "email": principal.email,
        "userId": principal.user_id,
    }
    value["invitedDate"] = server_date(now)
    return MemberWrite(send_invite=_invites(value))


def prepare_change(
    old: dict[str, Any], value: dict[str, Any], principal: Principal, now: datetime
) -> MemberWrite:
    """Keep the server's fields, and let only the invitee accept or reject.

    A changed state is the invitee's answer: the server stamps its own time
    (accepted and rejected stay exclusive) and binds ``userId`` on
    acceptance. Unchanged, the stored times stay whatever the client sent.
    """
    _normalise(value)
    _restore(value, old, SYSTEM_FIELDS)
    before, after = state_of(old), _answer(old, value)
    server_set: frozenset[str] = frozenset()
    if before == after:
        _restore(value, old, ACCEPTANCE_FIELDS)
    elif principal.global_write:
        _stamp(value, after, now)
    elif stands_for(old, principal):
        _stamp(value, after, now)
        if after == ACTIVE:
            value["userId"] = principal.user_id
        else:
            _restore(value, old, ("userId",))
        server_set = frozenset({*ACCEPTANCE_FIELDS, "userId"})
    else:
        raise PermissionDenied("members: only the invitee may accept or reject an invitation")
    newly_invited = old.get("invite") is not True and _invites(value) and after == PENDING
    if newly_invited:
        value["invitedDate"] = server_date(now)
    return MemberWrite(server_set, newly_invited)


def _answer(old: dict[str, Any], value: dict[str, Any]) -> str:
    """The state the client means: the field it set wins, whatever its clock says
    (``accept()`` after ``reject()`` must accept even if the device is behind)."""
    accepted, rejected = (
        _present(value.get(name)) and tson.dumps(value.get(name)) != tson.dumps(old.get(name))
        for name in ACCEPTANCE_FIELDS
    )
    if accepted != rejected:
        return ACTIVE if accepted else REJECTED
    return state_of(value)


def _normalise(value: dict[str, Any]) -> None:
    if "email" in value and normalise_email(value["email"]) is not None:
        value["email"] = normalise_email(value["email"])


def _invites(value: dict[str, Any]) -> bool:
    return value.get("invite") is True and normalise_email(value.get("email")) is not None


def _stamp(value: dict[str, Any], state: str, now: datetime) -> None:
    for name in ACCEPTANCE_FIELDS:
        value.pop(name, None)
    if state == ACTIVE:
        value["accepted"] = server_date(now)
    elif state == REJECTED:
        value["rejected"] = server_date(now)


def _restore(value: dict[str, Any], old: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if name in old:
            value[name] = old[name]
        else:
            value.pop(name, None)


def owner_member(
    realm_id: str, owner: str, principal: Principal, prefix: str, now: datetime
) -> tuple[str, dict[str, Any]]:
    """Key and value of the member row the server adds for a new realm's owner (A7.1).

    The key is derived from realm and owner, so that the row is the same
    however often the realm is created, deleted and created again.
    """
    digest = hashlib.sha256(f"{realm_id}\0{owner}".encode()).hexdigest()[:24]
    key = f"{prefix}{digest}{realm_id[-3:]}"
    value: dict[str, Any] = {
        "id": key,
        "realmId": realm_id,
        "userId": owner,
        "accepted": server_date(now),
        "owner": owner,
    }
    if owner == principal.user_id:
        if principal.email_key:
            value["email"] = principal.email_key
        if principal.name:
            value["name"] = principal.name
    return key, value
