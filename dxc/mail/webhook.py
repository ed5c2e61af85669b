"""Delivering one mail: a POST to the installation's e-mail web-hook, run as a job.

Runs in an RQ worker (``python -m workers``) or in the web process's own
runner (:mod:`dxc.jobs`), so it takes only picklable arguments and raises
to ask for a retry, with a message that names no secret.
"""

from __future__ import annotations

import urllib.error
import urllib.request

TIMEOUT_SECONDS = 15


class WebhookFailed(RuntimeError):
    """The web-hook did not accept the delivery (the message names no secret)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect of a POST as a GET and lose the body."""

    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post_webhook(url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST ``body`` to ``url``; any answer but a 2xx is a failure."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise WebhookFailed(f"the web-hook cannot be reached: {reason}") from None
    if not 200 <= status < 300:
        raise WebhookFailed(f"the web-hook answered HTTP {status}")
