"""Log lines as JSON objects or text, each carrying the id of the request it belongs to.

The request id lives in a context variable (per greenlet under gevent), set by
the HTTP layer for the length of a request, so every line logged while
answering it names it, whichever module logs. A filter on the one handler
also strips secrets that a library might put in a message (``token=`` in a
WebSocket URL logged by the development server, for one).
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pythonjsonlogger.json import JsonFormatter

#: The id of the request being answered in this context, if any.
REQUEST_ID: ContextVar[str | None] = ContextVar("dxc_request_id", default=None)

#: An incoming ``X-Request-Id`` is kept only if it is this short and plain, so that
#: it can neither forge log lines nor bloat them.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
#: Query parameters whose values never reach a log (checked as lower-case substrings).
SECRET_PARAMETERS = ("token", "secret", "password", "otp", "code", "key", "auth")
#: ``name=value`` pairs redacted in any message (a URL's query logged by a library).
_SECRET_IN_TEXT = re.compile(
    r"(?i)(?<![\w-])((?:access_|refresh_|id_)?token|client_secret|secret|password|otp|code"
    r"|api_?key)=[^&\s\"']+"
)
REDACTED = "[redacted]"
TEXT_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = ["asctime", "levelname", "name", "process", "message"]
LOG_FORMATS = ("json", "text")


def request_id(incoming: str | None) -> str:
    """``incoming`` (a client's or a proxy's ``X-Request-Id``) if it is sane, else a new id."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def redact_query(query: str) -> str:
    """The query string with the value of every secret-looking parameter replaced."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(
        [
            (name, REDACTED if any(s in name.lower() for s in SECRET_PARAMETERS) else value)
            for name, value in pairs
        ],
        safe="[]",
    )


def redact_text(text: str) -> str:
    """``text`` with the value of every ``secret-looking-name=value`` replaced."""
    return _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` to records logged during a request; redacts secrets in messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = REQUEST_ID.get()
        if rid is not None and not hasattr(record, "request_id"):
            record.request_id = rid
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: the handler reports it, as without this filter
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class TextFormatter(logging.Formatter):
    """The classic one-line format, with ``request_id=…`` at the end of a request's lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        rid = getattr(record, "request_id", None)
        return f"{line} request_id={rid}" if rid else line


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``DXC_LOG_FORMAT`` (``json`` or ``text``)."""
    if log_format == "json":
        return JsonFormatter(
            JSON_FIELDS,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return TextFormatter(TEXT_FORMAT)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """One handler on the root logger, to stderr; calling it again replaces it."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "dxc", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.dxc = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter(log_format))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)


def gunicorn_logconfig(log_format: str) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its own lines in the application's format.

    The root logger gets no handler here: each worker's ``create_app`` adds
    the one above, and a second one would print every line twice.
    """
    return {
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error"], "propagate": False},
        },
        "handlers": {
            "error": {
                "class": "logging.StreamHandler",
                "formatter": "dxc",
                "stream": "ext://sys.stderr",
            },
        },
        "formatters": {"dxc": {"()": "dxc.logs.formatter", "log_format": log_format}},
    }


def default_log_format(environ: Mapping[str, str]) -> str:
    """``DXC_LOG_FORMAT``, else JSON in production (log collectors parse it), text otherwise."""
    value = environ.get("DXC_LOG_FORMAT", "").strip().lower()
    if value:
        return value
    return "json" if environ.get("DXC_ENV", "").strip().lower() == "production" else "text"
