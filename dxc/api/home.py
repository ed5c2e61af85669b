"""What someone who opens the server's URL, or a database URL, in a browser reads.

A database URL is meant for ``db.cloud.configure``, not for a browser, but
a 404 there reads as "wrong URL": a small JSON page says that it is right
and how to use it.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify

from dxc.api import services

bp = Blueprint("home", __name__)

SERVER = "dxc-server"


@bp.get("/")
def home() -> Response:
    settings = services().settings
    return jsonify(
        server=SERVER,
        about="A self-hosted sync server that speaks the Dexie Cloud protocol "
        "(dexie-cloud-addon, the dexie-cloud CLI, the REST API).",
        health=f"{settings.public_url}/health",
        ready=f"{settings.public_url}/ready",
        databases=f"{settings.public_url}/<dbId>: `flask dxc databases` lists them",
        service=settings.service_url,
    )


@bp.get("/<db_id>")
@bp.get("/<db_id>/")
def database(db_id: str) -> Response:
    services().router.shard_for(db_id)  # 404 for an unknown database
    url = services().settings.database_url_for(db_id)
    return jsonify(
        database=db_id,
        about=f"This is the URL of a Dexie Cloud database on {SERVER}: apps sync with it, "
        "it is not a web page.",
        configure=f"db.cloud.configure({{ databaseUrl: {json.dumps(url)} }})",
        cli=f"npx dexie-cloud connect {url}",
        health=f"{services().settings.public_url}/health",
    )
