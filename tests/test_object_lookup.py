"""ObjectStore.get_many: the rows of exactly the keys asked for, whatever they hold
(on PostgreSQL the keys travel as one array literal)."""

from __future__ import annotations

from dxc.storage.objects import BATCH, StoredObject

AWKWARD = [
    'a "quoted" \\ key', "{braces},[commas]", "NULL", "null", " spaced ", "é\U0001f600",
    "tab\tand\nnewline", "'single'",
]


def row(key: str, table: str = "items") -> StoredObject:
    return StoredObject(table, key, "rlm-public", None, 1, False, f'{{"id": {len(key)}}}')


def test_awkward_keys_are_found_as_stored_and_no_others(in_store):
    in_store(lambda s: s.put_many([row(key) for key in AWKWARD] + [row("other")]))
    in_store(lambda s: s.put_many([row(AWKWARD[0], table="notes")]))

    found = in_store(lambda s: s.get_many("items", [*AWKWARD, "missing", AWKWARD[0]]))

    assert sorted(found) == sorted(AWKWARD)
    assert all(found[key] == row(key) for key in AWKWARD)


def test_more_keys_than_one_batch(in_store):
    keys = [f"itm{n}" for n in range(BATCH * 2 + 3)]
    in_store(lambda s: s.put_many([row(key) for key in keys]))

    found = in_store(lambda s: s.get_many("items", [*keys[1:], "itm-missing"]))

    assert sorted(found) == sorted(keys[1:])
