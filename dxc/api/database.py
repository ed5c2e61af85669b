"""The endpoints under a database URL: ``/<db>/sync`` and friends (logins: ``dxc.api.auth``)."""

from __future__ import annotations

import itertools
import logging

from flask import Blueprint, Response, request, stream_with_context
from werkzeug.exceptions import Forbidden

from dxc import metrics
from dxc.access import ANONYMOUS, Principal
from dxc.api import services
from dxc.api.bearer import bearer_claims

log = logging.getLogger(__name__)
bp = Blueprint("database", __name__)
SYNC_SCOPES = frozenset({"ACCESS_DB", "GLOBAL_READ", "GLOBAL_WRITE"})


def principal() -> Principal:
    """The caller, from its Bearer token; anonymous without one.

    Only tokens meant for data access sync: a CONNECT_CLIENT or CREATE_DB
    token proves an e-mail address, not a right to the data.
    """
    claims = bearer_claims(request.view_args["db_id"])
    if claims is None:
        return ANONYMOUS
    if not claims.scopes & SYNC_SCOPES:
        raise Forbidden("the access token lacks the ACCESS_DB scope")
    return Principal(claims.sub, claims.scopes, claims.email, claims.name)


@bp.post("/<db_id>/sync")
def sync(db_id: str) -> Response:
    caller = principal()
    outcome, answer = services().sync.sync(db_id, caller, request.get_data())
    log.info(
        "sync db=%s applied=%d rejected=%d", db_id, outcome.applied, outcome.rejected
    )
    metrics.SYNC_TRANSACTIONS.labels("applied").inc(outcome.applied)
    metrics.SYNC_TRANSACTIONS.labels("refused").inc(outcome.rejected)
    head = next(answer)  # opens the read transaction: an outage is a 503, not a cut stream
    return Response(
        stream_with_context(itertools.chain((head,), answer)), mimetype="application/json"
    )

