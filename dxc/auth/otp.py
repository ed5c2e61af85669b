"""One-time passwords: the codes, their digests and the two steps of the ``otp`` grant.

Codes are 8 characters from ``[A-Z0-9]`` without look-alikes (no 0/O, 1/I),
the length at which the client's default dialog submits by itself. Only an
HMAC-SHA256 of each code (keyed from ``DXC_SECRET``, bound to its
``otp_id``) is stored; a code is used once, lives ``DXC_OTP_TTL`` seconds and
is compared with at most ``DXC_OTP_MAX_ATTEMPTS`` guesses, however many arrive
at once.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from dxc.config import Settings
from dxc.mail import Mailer, is_web_origin, origin_name
from dxc.storage import otps, rate_limits
from dxc.storage.clock import utcnow

log = logging.getLogger(__name__)

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8
#: The audience of tokens for the service API (``/service``); never a database id.
SERVICE = "service"
# The client's own check: local@label.tld with a 2-10 character top-level label.
_EMAIL = re.compile(r"^[^\s@]+@(?:[^\s@.]+\.)+[^\s@.]{2,10}$")


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """What the user typed, as it was issued: upper case, no spaces or dashes."""
    return re.sub(r"[\s-]", "", text).upper()


def is_email(text: str) -> bool:
    return bool(_EMAIL.match(text))


@dataclass(frozen=True)
class Caller:
    """Where a token request comes from."""

    address: str | None = None
    origin: str | None = None


@dataclass(frozen=True)
class Verified:
    """An e-mail address proven by its one-time password."""

    email: str
    scopes: tuple[str, ...]
    intent: str | None


class OtpRefused(Exception):
    """Step 1 cannot send a code: ``status`` and a message for the caller."""

    def __init__(self, status: int, error: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.retry_after = retry_after


class WrongCode(Exception):
    """A wrong code with attempts left: the client asks again."""


class CodeUnusable(Exception):
    """Unknown, expired, used or exhausted: the user must start over."""


class OtpLogin:
    def __init__(self, control: Engine, settings: Settings, mailer: Mailer) -> None:
        self.control = control
        self.settings = settings
        self.mailer = mailer
        #: Codes are hashed with the first key; the others (old secrets) still verify.
        self._keys = settings.keyring.keys("otp")

    @staticmethod
    def _digest(key: bytes, otp_id: str, code: str) -> str:
        return hmac.new(key, f"{otp_id}:{code}".encode(), "sha256").hexdigest()

    def request(
        self,
        audience: str,
        email: str,
        scopes: tuple[str, ...],
        intent: str | None,
        caller: Caller,
        template: str = "otp",
    ) -> str:
        """Send a code to ``email`` in the mail ``template``; the ``otp_id`` that step 2
        names."""
        settings = self.settings
        channel = self.mailer.channel()
        if channel is None and settings.env == "production":
            raise OtpRefused(
                503, "email_channel_missing",
                "This server cannot send e-mail yet: its administrator must run "
                "`flask dxc init-email-channel URL`.",
            )
        window = timedelta(seconds=settings.otp_rate_window)
        otp_id, code = secrets.token_urlsafe(24), new_code()
        with self.control.begin() as connection:
            otps.delete_expired_otps(connection)
            rate_limits.forget_before(connection, window)
            limits = [("email:" + email, settings.otp_max_per_email, "this e-mail address")]
            if caller.address:
                limits.append(
                    ("address:" + caller.address, settings.otp_max_per_address, "your address")
                )
            for key, limit, what in limits:
                wait = rate_limits.hit(connection, key, limit, window)
                if wait is not None:
                    minutes = max(1, round(wait.total_seconds() / 60))
                    raise OtpRefused(
                        429, "too_many_requests",
                        f"Too many one-time passwords were requested for {what}. "
                        f"Please try again in {minutes} minute{'s' if minutes > 1 else ''}.",
                        retry_after=max(1, int(wait.total_seconds())),
                    )
            otps.create_otp(connection, otps.Otp(
                otp_id=otp_id,
                audience=audience,
                email=email,
                code_hash=self._digest(self._keys[0], otp_id, code),
                scopes=scopes,
                intent=intent,
                attempts=0,
                expires=utcnow() + timedelta(seconds=settings.otp_ttl),
            ))
        if channel is None:
            log.warning(
                "\n%s\nNO E-MAIL CHANNEL: the one-time password for %s is %s\n"
                "(development only; set a channel with `flask dxc init-email-channel URL`)\n%s",
                "!" * 72, email, code, "!" * 72,
            )
            return otp_id
        url = settings.service_url if audience == SERVICE else settings.database_url_for(audience)
        self.mailer.send(channel, self.mailer.compose(audience, template, email, {
            "otp": code,
            "otpId": otp_id,
            "email": email,
            "originName": origin_name(caller.origin, url),
            "isApp": bool(caller.origin) and not is_web_origin(caller.origin),
            "databaseUrl": url,
            "validMinutes": max(1, settings.otp_ttl // 60),
        }))
        log.info("one-time password sent by e-mail (audience %s)", audience)
        return otp_id

    def verify(self, audience: str, otp_id: str, code: str, email: str | None) -> Verified:
        """The proven identity; :class:`WrongCode` or :class:`CodeUnusable` otherwise.

        The attempt is spent and committed before the code is compared, so
        parallel guesses get no more comparisons than sequential ones.
        """
        max_attempts = self.settings.otp_max_attempts
        with self.control.begin() as connection:
            otp = otps.take_attempt(connection, otp_id, audience, email, max_attempts)
            if otp is None:
                raise CodeUnusable(_why_unusable(otps.get_otp(connection, otp_id), audience, email))
        code = normalize_code(code)
        if not any(hmac.compare_digest(otp.code_hash, self._digest(key, otp_id, code))
                   for key in self._keys):
            if otp.attempts >= max_attempts:  # the last one: end the client's re-prompt loop
                raise CodeUnusable("Too many wrong one-time passwords. Please start over.")
            raise WrongCode("Invalid OTP. Please try again.")
        with self.control.begin() as connection:
            if not otps.consume_otp(connection, otp_id):
                raise CodeUnusable("This one-time password was already used.")
        return Verified(otp.email, otp.scopes, otp.intent)


def _why_unusable(otp: otps.Otp | None, audience: str, email: str | None) -> str:
    """What to tell a user whose one-time password took no attempt."""
    if otp is None or otp.audience != audience or (email and email != otp.email):
        return "This one-time password is not valid. Please start over."
    if otp.expired:
        return "This one-time password has expired. Please start over."
    return "Too many wrong one-time passwords. Please start over."
