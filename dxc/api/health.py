"""``/health`` (the process answers) and ``/ready`` (its databases and Redis answer).

Load balancers and orchestrators probe these: ``/health`` never touches a
dependency, so a database outage does not get healthy workers restarted;
``/ready`` says whether this instance can serve syncs right now.
"""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from dxc.api import services

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
PROBE_TIMEOUT_SECONDS = 2


@bp.get("/health")
def health() -> Response:
    return jsonify(status="ok")


@bp.get("/ready")
def ready() -> Response:
    checks = {"control": _database(services().control)}
    try:
        shards = services().router.all_shards()
    except Exception:
        shards = []
        checks["control"] = "unreachable"
    for shard in shards:
        if shard.engine is not services().control:
            checks[f"shard:{shard.name}"] = _database(shard.engine)
    if services().settings.redis_url:
        checks["redis"] = _redis(services().settings.redis_url)
    healthy = all(state == "ok" for state in checks.values())
    response = jsonify(status="ok" if healthy else "unavailable", checks=checks)
    response.status_code = 200 if healthy else 503
    return response


def _database(engine) -> str:  # type: ignore[no-untyped-def]
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        log.warning("readiness: database unreachable: %s", type(error).__name__)
        return "unreachable"
    return "ok"


def _redis(url: str) -> str:
    try:
        redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_SECONDS).ping()
    except redis.RedisError as error:
        log.warning("readiness: redis unreachable: %s", type(error).__name__)
        return "unreachable"
    return "ok"
