"""The endpoints under a database URL: ``/<db>/sync``, ``/<db>/y/download`` and friends
(logins: ``dxc.api.auth``)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

from flask import Blueprint, Response, request, stream_with_context
from werkzeug.exceptions import Forbidden

from dxc import metrics
from dxc.access import Principal
from dxc.api import services
from dxc.api.authorise import caller
from dxc.auth.scopes import ACCESS_DB, DATA_SCOPES
from dxc.storage.router import Shard
from dxc.sync.service import SyncOutcome
from dxc.sync.ydownload import download

log = logging.getLogger(__name__)
bp = Blueprint("database", __name__)


def data_caller(db_id: str) -> Principal:
    principal = caller(db_id)
    if not principal.is_anonymous and not principal.scopes & DATA_SCOPES:
        # A CONNECT_CLIENT or CREATE_DB token proves an e-mail address, not a right to data.
        raise Forbidden(f"the access token lacks {ACCESS_DB}")
    return principal


@bp.post("/<db_id>/sync")
def sync(db_id: str) -> Response:
    principal = data_caller(db_id)
    services().activity.synced(db_id)  # in memory; `flask dxc stats` (dxc/activity.py)
    body = request.get_data()

    def attempt(_shard: Shard) -> tuple[SyncOutcome, str, Iterator[str]]:
        outcome, answer = services().sync.sync(db_id, principal, body)
        head = next(answer)  # opens the read transaction: an outage is a 503, not a cut stream
        return outcome, head, answer

    # A database being moved holds its writes for a moment, and a placement read
    # before its switch names the old shard: the request is run again where it lives
    # (what the first attempt committed is recognised by its txids).
    patience = services().settings.move_hold_seconds + 1
    outcome, head, answer = services().router.retrying(db_id, attempt, patience)
    log.info(
        "sync db=%s applied=%d rejected=%d", db_id, outcome.applied, outcome.rejected
    )
    metrics.SYNC_TRANSACTIONS.labels("applied").inc(outcome.applied)
    metrics.SYNC_TRANSACTIONS.labels("refused").inc(outcome.rejected)
    return Response(
        stream_with_context(itertools.chain((head,), answer)), mimetype="application/json"
    )


@bp.post("/<db_id>/y/download")
def y_download(db_id: str) -> Response:
    """The Y documents of the realms the client has not downloaded (docs/yjs.md)."""
    principal = data_caller(db_id)
    frames = download(services().router, db_id, principal, request.get_data())
    next(frames)  # opens the read transaction: an outage is a 503, not a cut stream
    return Response(stream_with_context(frames), mimetype="application/octet-stream")
