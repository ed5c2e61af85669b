"""The comparison of a database's two copies before a move switches (shard_copy.check,
and blob_digests for the bytes of blobs): computed by PostgreSQL when both shards are
PostgreSQL, it sees every difference the one computed in Python sees, and nothing else
(not the servers' output settings)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, delete, text, update

from dxc.storage import schema, shard_copy
from dxc.storage.blobs import IN_DATABASE, BlobIndex, BlobInfo
from dxc.storage.clock import utcnow
from dxc.storage.objects import ObjectStore, StoredObject
from dxc.storage.shard_copy import (
    blob_digests,
    blob_digests_of_copies,
    check,
    check_copies,
    copy_revision_counter,
    copy_rows,
    hashed_in_database,
)
from tests.conftest import postgres_database

DB = "dbcheck"


@pytest.fixture
def shards(postgres_available: bool) -> Iterator[tuple[Engine, Engine]]:
    if not postgres_available:
        pytest.skip("PostgreSQL is not available")
    with postgres_database() as first, postgres_database() as second:
        engines = create_engine(first), create_engine(second)
        for engine in engines:
            schema.shard_metadata.create_all(engine)
        yield engines
        for engine in engines:
            engine.dispose()


def fill(engine: Engine) -> None:
    with engine.begin() as connection:
        store = ObjectStore(connection, DB)
        store.create_revision_counter()
        store.put_many([
            StoredObject("items", f"itm{n}", "rlm", None if n % 2 else "o", n + 1, n == 3,
                         None if n == 3 else f'{{"n":{n},"t":"é \\" {n}"}}')
            for n in range(20)
        ])
        index = BlobIndex(connection, DB)
        index.add(BlobInfo("blob1", "o", "text/plain", 300_000, IN_DATABASE, utcnow()))
        index.write_chunks("blob1", io.BytesIO(bytes(range(256)) * 1200))


def checks(source: Engine, target: Engine, timezone: str = "UTC") -> tuple[tuple, tuple]:
    """Both copies' :func:`check` and :func:`blob_digests`, each computed by PostgreSQL."""
    with source.connect() as theirs, target.connect() as ours:
        ours.execute(text(f"SET TimeZone = '{timezone}'"))
        assert hashed_in_database(theirs, ours)
        (rows, other_rows), (blobs, other_blobs) = (
            check_copies(theirs, ours, DB), blob_digests_of_copies(theirs, ours, DB)
        )
        return (rows, blobs), (other_rows, other_blobs)


def python_checks(source: Engine, target: Engine) -> tuple[tuple, tuple]:
    """The same, computed here."""
    with source.connect() as theirs, target.connect() as ours:
        return ((check(theirs, DB), blob_digests(theirs, DB)),
                (check(ours, DB), blob_digests(ours, DB)))


def test_a_copy_hashes_alike_in_postgres_whatever_the_session_time_zone(shards):
    source, target = shards
    fill(source)
    with source.connect() as reading, target.begin() as writing:
        copy_rows(reading, writing, DB, None)
        copy_revision_counter(reading, writing, DB)
    theirs, ours = checks(source, target, timezone="Asia/Kolkata")
    assert theirs == ours
    rows, blobs = theirs
    assert rows["objects"].rows == 20 and rows["blob_chunks"].rows == 2
    assert [blob_id for blob_id, _created in blobs] == ["blob1"]


@pytest.mark.parametrize(
    ("change", "seen_by"),
    [("chunk byte", "blob bytes"), ("chunk gone", "rows and blob bytes"), ("value", "rows"),
     ("tombstone", "rows"), ("owner", "rows"), ("created", "rows and blob bytes")],
)
def test_any_difference_shows_in_both_comparisons(shards, change, seen_by):
    source, target = shards
    fill(source)
    with source.connect() as reading, target.begin() as writing:
        copy_rows(reading, writing, DB, None)
        copy_revision_counter(reading, writing, DB)
    objects, blobs = schema.objects, schema.blobs
    statement = {
        "chunk byte": text("UPDATE blob_chunks SET data = overlay(data placing '\\x01'::bytea"
                           " from 7) WHERE seq = (SELECT max(seq) FROM blob_chunks)"),
        "chunk gone": text("DELETE FROM blob_chunks"
                           " WHERE seq = (SELECT max(seq) FROM blob_chunks)"),
        "value": update(objects).where(objects.c.key == "itm5").values(value='{"n":55}'),
        "tombstone": update(objects).where(objects.c.key == "itm4").values(deleted=True),
        "owner": update(objects).where(objects.c.key == "itm6").values(owner=None),
        "created": update(blobs).values(created=utcnow()),
    }[change]
    with target.begin() as connection:
        assert connection.execute(statement).rowcount == 1
    for theirs, ours in (checks(source, target), python_checks(source, target)):
        (rows, blobs), (other_rows, other_blobs) = theirs, ours
        assert (rows != other_rows) == ("rows" in seen_by)
        assert (blobs != other_blobs) == ("blob bytes" in seen_by)


@pytest.mark.parametrize("in_database", [True, False])
def test_the_digests_of_named_blobs_are_asked_for_in_slices(shards, monkeypatch, in_database):
    source, _ = shards
    fill(source)
    with source.begin() as connection:
        index = BlobIndex(connection, DB)
        for blob in ("blob2", "blob3"):
            index.add(BlobInfo(blob, "o", "text/plain", 5, IN_DATABASE, utcnow()))
            index.write_chunks(blob, io.BytesIO(blob.encode()))
    with source.connect() as connection:
        every = blob_digests(connection, DB, in_database)
        monkeypatch.setattr(shard_copy, "BATCH", 1)
        named = blob_digests(connection, DB, in_database, only=["blob3", "blob1", "nosuch"])
    assert len(every) == 3 and len(set(every.values())) == 3
    assert named == {upload: digest for upload, digest in every.items() if upload[0] != "blob2"}


@pytest.mark.parametrize(
    ("change", "seen_after_10"),
    [("value of rev 6", False), ("value of rev 16", True), ("row of rev 6 gone", True)],
)
def test_rows_changed_after_a_revision_are_hashed_and_every_row_counted(
    shards, change, seen_after_10
):
    """``changed_after``: what a move's hold compares of copies found alike at that revision.
    An older row that differs is left to the comparison before (it does not read it)."""
    source, target = shards
    fill(source)
    with source.connect() as reading, target.begin() as writing:
        copy_rows(reading, writing, DB, None)
        copy_revision_counter(reading, writing, DB)
    objects = schema.objects
    statement = {
        "value of rev 6": update(objects).where(objects.c.key == "itm5").values(value="{}"),
        "value of rev 16": update(objects).where(objects.c.key == "itm15").values(value="{}"),
        "row of rev 6 gone": delete(objects).where(objects.c.key == "itm5"),
    }[change]
    with target.begin() as connection:
        assert connection.execute(statement).rowcount == 1
    with source.connect() as theirs, target.connect() as ours:
        for in_database in (True, False):
            whole = check(theirs, DB, in_database), check(ours, DB, in_database)
            after = check(theirs, DB, in_database, 10), check(ours, DB, in_database, 10)
            assert whole[0]["objects"] != whole[1]["objects"]
            assert (after[0]["objects"] != after[1]["objects"]) == seen_after_10
            assert after[0]["objects"].rows == 20
            assert after[0]["blob_chunks"] == whole[0]["blob_chunks"]  # no revisions: whole
