"""``GET /metrics``: Prometheus text, summed over every worker (``dxc.metrics``).

Open unless ``DXC_METRICS_TOKEN`` is set; then the scraper sends it as a
Bearer token. It is installation-wide, so no database's token opens it.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from dxc import metrics
from dxc.api import services
from dxc.api.errors import error_response
from dxc.jobs import QUEUE

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    settings = services().settings
    if settings.metrics_token and not _bearer_matches(settings.metrics_token):
        response = error_response(
            401, "unauthorized", "/metrics needs the DXC_METRICS_TOKEN as a Bearer token"
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.exposition(settings.redis_url, QUEUE)
    return Response(body, content_type=content_type)


def _bearer_matches(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
