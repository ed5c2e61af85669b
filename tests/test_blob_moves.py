"""Blob writes behind the fence of a database being moved (docs/shards.md, docs/blobs.md).

A blob upload takes no revision, so without a fence of its own it could land on
the old shard after a move's final pass and be deleted with the old copy. These
tests show it never does: a shard the database left refuses uploads and orphan
removals (503, nothing written), and an upload that arrives while a move holds
the writes waits, then is stored on the new shard.
"""

from __future__ import annotations

import io
import secrets
import threading
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, delete

from dxc.blobs.collector import collect_orphans
from dxc.manage import moves
from dxc.storage import schema
from dxc.storage.blobs import IN_DATABASE, BlobIndex, BlobInfo
from dxc.storage.clock import utcnow
from dxc.storage.router import NotOnShard
from dxc.storage.shard_copy import check, copy_rows
from tests.protocol_client import ALICE
from tests.shard_databases import shard_database  # noqa: F401
from tests.test_blobs_http import Db, blob_id

#: Seconds the move's hold waits for the racing upload before it goes on (the upload
#: blocks on the fence, so the wait ends by this timeout; without a fence it ends early).
RACE_WAIT = 2.0


def test_a_shard_the_database_left_refuses_uploads_and_removals(make_app):
    db = Db(make_app(move_hold_seconds=0))
    alice = db.device(ALICE)
    db.put(alice.token, b"an orphan to be")
    # What a move leaves on the old shard at its switch: every row but the counter.
    with db.services.router.shard_for(db.id).transaction() as connection:
        connection.execute(delete(schema.revisions).where(schema.revisions.c.db_id == db.id))

    response = db.client.put(f"/{db.id}/blob/{blob_id()}", data=b"late bytes",
                             headers={"Authorization": f"Bearer {alice.token}"})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert db.rows(schema.blobs) == 1 and db.rows(schema.blob_chunks) == 1

    later = utcnow() + timedelta(seconds=db.services.settings.blob_orphan_grace + 1)
    with pytest.raises(NotOnShard):
        collect_orphans(db.services.blobs, db.id, now=later)
    assert db.rows(schema.blobs) == 1


def test_an_upload_during_the_moves_hold_is_stored_on_the_new_shard(
    app, shard_database, monkeypatch  # noqa: F811
):
    services = app.extensions["dxc"]
    monkeypatch.setattr(moves, "PLACEMENT_TTL", 0.2)
    monkeypatch.setattr(moves, "CACHE_MARGIN_SECONDS", 0.1)
    runner = app.test_cli_runner()
    with app.app_context():
        added = runner.invoke(args=["dxc", "add-shard", "local", shard_database(),
                                    "--weight", "0"])
    assert added.exit_code == 0, added.output
    db = Db(app)
    alice = db.device(ALICE)
    body = secrets.token_bytes(300 * 1024)
    bid = blob_id()
    answers: list = []
    racing = threading.Thread(target=lambda: answers.append(db.client.put(
        f"/{db.id}/blob/{bid}", data=body, headers={"Authorization": f"Bearer {alice.token}"})))

    copy_counter = moves.copy_revision_counter

    def upload_after_the_final_pass(source, target, db_id):  # type: ignore[no-untyped-def]
        racing.start()
        racing.join(RACE_WAIT)
        return copy_counter(source, target, db_id)

    monkeypatch.setattr(moves, "copy_revision_counter", upload_after_the_final_pass)
    moves.move_database(services, db.id, "local", hold_seconds=10)
    monkeypatch.setattr(moves, "copy_revision_counter", copy_counter)
    racing.join()

    (answer,) = answers
    assert answer.status_code == 200, answer.get_data(as_text=True)
    services.router.forget(db.id)
    assert services.router.shard_for(db.id).name == "local"
    assert db.get(alice.token, answer.get_json()["ref"]).data == body
    with services.router.shard_for(db.id).transaction(read_only=True) as connection:
        assert BlobIndex(connection, db.id).get(bid) is not None


def test_a_database_with_blobs_in_its_shard_moves_with_them(app, shard_database):  # noqa: F811
    services = app.extensions["dxc"]
    with app.app_context():
        added = app.test_cli_runner().invoke(
            args=["dxc", "add-shard", "local", shard_database(), "--weight", "0"])
    assert added.exit_code == 0, added.output
    db = Db(app)
    alice = db.device(ALICE)
    bodies = {db.put(alice.token, body)["ref"]: body
              for body in (secrets.token_bytes(700 * 1024), b"small")}
    moves.move_database(services, db.id, "local", hold_seconds=10)
    services.router.forget(db.id)
    assert services.router.shard_for(db.id).name == "local"
    for ref, body in bodies.items():
        assert db.get(alice.token, ref).data == body


def test_a_copy_pass_copies_a_blob_once_and_follows_removals_and_new_uploads(tmp_path):
    """Blobs have no revision: a pass copies those the target lacks and drops those
    the source lost, so that the hold does not copy every blob's bytes again."""
    source, target = (create_engine(f"sqlite:///{tmp_path / name}") for name in ("s", "t"))
    for engine in (source, target):
        schema.shard_metadata.create_all(engine)
    db_id = "dbblobs"

    def upload(blob: str, data: bytes) -> None:
        with source.begin() as connection:
            index = BlobIndex(connection, db_id)
            index.add(BlobInfo(blob, ALICE, "text/plain", len(data), IN_DATABASE, utcnow()))
            index.write_chunks(blob, io.BytesIO(data))

    def copy_pass() -> int:
        with source.connect() as reading, target.begin() as writing:
            return copy_rows(reading, writing, db_id, None)

    def same() -> bool:
        with source.connect() as theirs, target.connect() as ours:
            return check(theirs, db_id) == check(ours, db_id)

    upload("blobkept01", secrets.token_bytes(600 * 1024))  # 3 chunks
    upload("blobgoes01", b"gone soon")
    assert copy_pass() == 2 + 4 and same()
    assert copy_pass() == 0, "a blob already copied is not copied again"

    with source.begin() as connection:
        BlobIndex(connection, db_id).remove("blobgoes01")
    upload("blobnew001", b"new")
    assert copy_pass() == 2 and same()
    # An id freed by a removal and uploaded again, with other bytes: copied again.
    with source.begin() as connection:
        BlobIndex(connection, db_id).remove("blobnew001")
    upload("blobnew001", b"other bytes")
    assert copy_pass() == 2 and same()
