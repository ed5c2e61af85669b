"""ObjectStore.get_many: the rows of exactly the keys asked for, whatever they hold
(on PostgreSQL the keys travel as one array literal)."""

from __future__ import annotations

import pytest

from dxc.manage.databases import create_database
from dxc.storage.objects import BATCH, ObjectStore, StoredObject

AWKWARD = [
    'a "quoted" \\ key', "{braces},[commas]", "NULL", "null", " spaced ", "é\U0001f600",
    "tab\tand\nnewline", "'single'",
]


@pytest.fixture
def store(app):
    """A function that runs ``work(store)`` in one shard transaction of a new database."""
    services = app.extensions["dxc"]
    db_id = create_database(services).db_id
    shard = services.router.shard_for(db_id)

    def run(work):
        with shard.transaction() as connection:
            return work(ObjectStore(connection, db_id))

    return run


def row(key: str, table: str = "items") -> StoredObject:
    return StoredObject(table, key, "rlm-public", None, 1, False, f'{{"id": {len(key)}}}')


def test_awkward_keys_are_found_as_stored_and_no_others(store):
    store(lambda s: s.put_many([row(key) for key in AWKWARD] + [row("other")]))
    store(lambda s: s.put_many([row(AWKWARD[0], table="notes")]))

    found = store(lambda s: s.get_many("items", [*AWKWARD, "missing", AWKWARD[0]]))

    assert sorted(found) == sorted(AWKWARD)
    assert all(found[key] == row(key) for key in AWKWARD)


def test_more_keys_than_one_batch(store):
    keys = [f"itm{n}" for n in range(BATCH * 2 + 3)]
    store(lambda s: s.put_many([row(key) for key in keys]))

    found = store(lambda s: s.get_many("items", [*keys[1:], "itm-missing"]))

    assert sorted(found) == sorted(keys[1:])
