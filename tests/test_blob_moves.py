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
from sqlalchemy import Engine, create_engine, delete, text

from dxc.blobs.collector import collect_orphans
from dxc.manage import moves
from dxc.storage import schema
from dxc.storage.blobs import IN_DATABASE, BlobIndex, BlobInfo
from dxc.storage.clock import utcnow
from dxc.storage.router import NotOnShard
from dxc.storage.shard_copy import blob_digests, check, copy_rows
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


def _with_a_second_shard(app, shard_database) -> Db:  # noqa: F811
    """A database, and a second shard named ``local`` to move it to."""
    with app.app_context():
        added = app.test_cli_runner().invoke(
            args=["dxc", "add-shard", "local", shard_database(), "--weight", "0"])
    assert added.exit_code == 0, added.output
    return Db(app)


def test_a_database_with_blobs_in_its_shard_moves_with_them(app, shard_database):  # noqa: F811
    services = app.extensions["dxc"]
    db = _with_a_second_shard(app, shard_database)
    alice = db.device(ALICE)
    bodies = {db.put(alice.token, body)["ref"]: body
              for body in (secrets.token_bytes(700 * 1024), b"small")}
    moves.move_database(services, db.id, "local", hold_seconds=10)
    services.router.forget(db.id)
    assert services.router.shard_for(db.id).name == "local"
    for ref, body in bodies.items():
        assert db.get(alice.token, ref).data == body


def _blobs_database(app, shard_database) -> tuple[Db, str]:  # noqa: F811
    """A database with one blob in its shard, and a second shard to move it to."""
    db = _with_a_second_shard(app, shard_database)
    ref = db.put(db.device(ALICE).token, secrets.token_bytes(600 * 1024))["ref"]
    return db, ref


def _spoil_a_chunk(connection, blob: str) -> None:
    """Change the first byte of ``blob``'s first chunk in a (PostgreSQL) copy."""
    spoiled = connection.execute(text(
        "UPDATE blob_chunks SET data = set_byte(data, 0, (get_byte(data, 0) + 1) % 256) "
        "WHERE blob_id = :blob AND seq = 0"
    ), {"blob": blob})
    assert spoiled.rowcount == 1


def test_a_blob_whose_bytes_differ_after_the_copy_stops_the_move_before_its_hold(
    app, shard_database, monkeypatch  # noqa: F811
):
    """The bytes of blobs are compared while writes go on, not in the hold."""
    services = app.extensions["dxc"]
    db, ref = _blobs_database(app, shard_database)
    catch_up = moves._catch_up

    def spoiled_copy(source: Engine, target: Engine, *args):  # type: ignore[no-untyped-def]
        copied = catch_up(source, target, *args)
        with target.begin() as connection:
            _spoil_a_chunk(connection, connection.scalar(text("SELECT min(blob_id) FROM blobs")))
        return copied

    held = []
    monkeypatch.setattr(moves, "_catch_up", spoiled_copy)
    monkeypatch.setattr(moves, "_hold_and_switch", lambda *args: held.append(args))
    with pytest.raises(moves.MoveFailed, match="bytes of blob"):
        moves.move_database(services, db.id, "local", hold_seconds=10)
    assert not held
    assert services.router.shard_for(db.id).name != "local"

    monkeypatch.undo()
    moves.move_database(services, db.id, "local", hold_seconds=10)  # run again: it finishes
    services.router.forget(db.id)
    assert services.router.shard_for(db.id).name == "local"
    assert len(db.get(db.device(ALICE).token, ref).data) == 600 * 1024


def test_a_blob_first_copied_in_the_hold_has_its_bytes_compared_there(
    app, shard_database, monkeypatch  # noqa: F811
):
    services = app.extensions["dxc"]
    db, _ = _blobs_database(app, shard_database)
    catch_up, copy_counter = moves._catch_up, moves.copy_revision_counter

    def upload_after_the_comparison(source: Engine, *args):  # type: ignore[no-untyped-def]
        copied = catch_up(source, *args)
        with source.begin() as connection:  # straight into the shard: past the fence
            index = BlobIndex(connection, db.id)
            index.add(BlobInfo("bloblate01", ALICE, "text/plain", 5, IN_DATABASE, utcnow()))
            index.write_chunks("bloblate01", io.BytesIO(b"late!"))
        return copied

    def spoil_it_in_the_hold(source, target, db_id):  # type: ignore[no-untyped-def]
        _spoil_a_chunk(target, "bloblate01")
        return copy_counter(source, target, db_id)

    monkeypatch.setattr(moves, "_catch_up", upload_after_the_comparison)
    monkeypatch.setattr(moves, "copy_revision_counter", spoil_it_in_the_hold)
    with pytest.raises(moves.MoveFailed, match=r"bytes of blob.*bloblate01"):
        moves.move_database(services, db.id, "local", hold_seconds=10)
    services.router.forget(db.id)
    assert services.router.shard_for(db.id).name != "local"


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
            return (check(theirs, db_id) == check(ours, db_id)
                    and blob_digests(theirs, db_id) == blob_digests(ours, db_id))

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
