"""``flask dxc delete-db``: deleting a database for good once its owner confirmed it by
e-mail; a database that moved keeps being forwarded for a while, then its URL answers 410.

The confirmation is a one-time password (:mod:`dxc.auth.otp`: rate limits, attempts,
expiry, only an HMAC stored) mailed through the installation's e-mail channel to the
database's owner, with its own intent so that no login code confirms a deletion.
"""

from __future__ import annotations

from datetime import timedelta

from dxc.auth.otp import Caller, CodeUnusable, OtpLogin, WrongCode
from dxc.auth.scopes import DELETE_DB
from dxc.errors import Conflict, Forbidden, Invalid
from dxc.jobs import InlineJobs
from dxc.mail import Mailer
from dxc.manage.maintenance import purge_database
from dxc.services import Services
from dxc.storage import credentials, redirects, retired
from dxc.storage.clock import utcnow

#: The intent of the one-time passwords that confirm a deletion.
INTENT = "delete-db"
#: How long a deleted database that moved is still forwarded, by default (six months).
KEEP_REDIRECT_DAYS = 183.0


def owner_email(services: Services, db_id: str, email: str | None) -> str:
    """Who confirms: ``email`` if it holds an API client of ``db_id`` that may delete it
    (``DELETE_DB``), else the e-mail of the oldest such client (who created it, or was
    authorised first)."""
    services.router.shard_for(db_id)  # an unknown database is an error
    with services.control.connect() as connection:
        owners = [
            c.email for c in credentials.list_api_clients(connection, db_id)
            if c.email and DELETE_DB in c.scopes
        ]
    if email is not None:
        if email.lower() not in {owner.lower() for owner in owners}:
            raise Forbidden(f"{email} holds no API client of {db_id} that may delete it")
        return email.lower()
    if not owners:
        raise Conflict(
            f"{db_id} has no owner e-mail to confirm with: authorise one "
            f"(`npx dexie-cloud authorize EMAIL`) and give it with --email"
        )
    return owners[0].lower()


def request_confirmation(services: Services, db_id: str, email: str) -> str:
    """Mail a confirmation code to ``email``; the id that :func:`confirm` needs."""
    if services.mailer.channel() is None:
        raise Conflict("this installation has no e-mail channel (flask dxc init-email-channel)")
    settings = services.settings
    # Delivered before the command goes on (and may end): not left to a thread of this process.
    jobs = services.jobs if settings.redis_url else InlineJobs(settings.job_retry_delays)
    otp = OtpLogin(services.control, settings, Mailer(services.control, settings.keyring, jobs))
    return otp.request(db_id, email, (), INTENT, Caller(), template=INTENT)


def confirm(services: Services, db_id: str, otp_id: str, code: str, email: str) -> None:
    """Nothing if ``code`` is the one mailed for this deletion; :class:`Forbidden` else."""
    try:
        verified = services.tokens.otp.verify(db_id, otp_id, code, email)
    except (WrongCode, CodeUnusable) as refused:
        raise Forbidden(f"wrong confirmation code: {refused}") from None
    if verified.intent != INTENT:
        raise Forbidden("this code does not confirm a deletion")


def delete_database(services: Services, db_id: str, keep_redirect_days: float) -> retired.Retired:
    """Delete every row of ``db_id`` here; remember it so that its URL is forwarded to where
    it moved for ``keep_redirect_days``, or answers 410."""
    if keep_redirect_days < 0:
        raise Invalid("--keep-redirect-days cannot be negative")
    now = utcnow()
    with services.control.begin() as connection:
        entry = retired.get(connection, db_id)  # a deletion cut short and run again
        if entry is None:
            moved = redirects.get(connection, db_id)
            entry = retired.Retired(
                db_id=db_id, retired=now, target_url=moved and moved.target_url,
                forward_until=moved and now + timedelta(days=keep_redirect_days),
            )
            retired.record(connection, entry)  # from here on its URL never finds it again
    purge_database(services, db_id)
    return entry
