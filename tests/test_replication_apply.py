"""The fast paths of the replication copy read and write exactly what the plain ones do:
object lines read without re-encoding their value (dxc.replication.apply), and
PostgreSQL's one-statement upsert of a batch (ObjectStore.put_many)."""

from __future__ import annotations

import json

import pytest

from dxc.manage.databases import create_database
from dxc.manage.exporter import _change_line
from dxc.protocol import ProtocolError
from dxc.replication.apply import _entry, _object_entry, _other_line
from dxc.storage.objects import (
    AppliedTransaction,
    ConsistentOperation,
    ObjectStore,
    StoredObject,
)

AWKWARD = ['plain', 'quote " and \\ backslash', '{braces},[commas]', 'NULL', '', ' spaced ',
           "it's", 'é ü \U0001f600', 'tab\tnew\nline', '\\"', 'x\\']


def stream_line(row: StoredObject) -> str:
    """The line a dxc-server source writes for ``row``."""
    return _change_line(row).rstrip("\n")


@pytest.mark.parametrize("text", AWKWARD)
@pytest.mark.parametrize("deleted", [False, True])
def test_an_exported_object_line_reads_back_as_its_row(text, deleted):
    value = json.dumps({"title": text, "data": {"data": text}, "n": [1, 2.5, None]},
                       ensure_ascii=False, separators=(",", ":"))
    row = StoredObject("items", f"itm{text}", f"rlm{text}", text or None, 7, deleted,
                       None if deleted else value)
    line = stream_line(row)
    assert _object_entry(line) == row
    assert _entry(json.loads(line)) == row  # the plain path agrees


@pytest.mark.parametrize("line", [
    # the value is not all that follows "data": it would not be one JSON value
    '{"realm":"r","table":"t","id":"k","rev":1,"owner":null,"data":{"a":1},"data":{}}',
    '{"realm":"r","table":"t","id":"k","rev":1,"owner":null,"data":{"a":1}}}',
    '{"realm":"r","table":"t","id":"k","rev":1,"owner":null,"data":{"a":1}',
    # "data" first, another field after it: read the plain way
    '{"data":{"a":1},"realm":"r","table":"t","id":"k","rev":1}',
    # a nested field before it: its ,"data": might be the nested one
    '{"realm":"r","table":"t","id":"k","rev":1,"x":{"y":1,"data":2},"data":{"a":1}}',
    '{"type":"departure","realm":"r","table":"t","id":"k","rev":1}',
])
def test_a_line_of_another_shape_is_left_to_the_plain_path(line):
    assert _object_entry(line) is None


def test_a_line_in_another_order_or_with_escapes_keeps_its_value_text():
    line = '{"rev":3,"id":"k\\u00e9","table":"t","realm":"r","owner":"o","data":{"a": "\\u00e9"}}'
    assert _object_entry(line) == StoredObject("t", "ké", "r", "o", 3, False, '{"a": "\\u00e9"}')


@pytest.mark.parametrize("text", AWKWARD)
def test_an_exported_applied_txid_line_reads_back_as_its_record(text):
    applied = AppliedTransaction(text, f"client{text}", f',"data":{text}', 9)
    line = _change_line(applied)
    assert _object_entry(line) is None  # not taken for an object line
    assert _other_line(None, "db", json.loads(line), None, None) == applied


@pytest.mark.parametrize("line", [
    {"type": "applied", "user": "u", "client": "c", "txid": "t"},
    {"type": "applied", "user": None, "client": "c", "txid": "t", "rev": 1},
    {"type": "applied", "user": "u", "client": "c", "txid": 5, "rev": 1},
])
def test_a_broken_applied_txid_line_is_refused(line):
    with pytest.raises(ProtocolError, match="not an applied transaction line"):
        _other_line(None, "db", line, None, None)


@pytest.mark.parametrize("text", AWKWARD)
@pytest.mark.parametrize("user", ["alice@example.com", None])
def test_an_exported_where_clause_operation_line_reads_back_as_its_record(text, user):
    operation = ConsistentOperation(
        "items", user, f"client{text}", 9, '{"type":"delete","criteria":{"x":%s}}' % json.dumps(
            f',"data":{text}'
        ),
    )
    line = _change_line(operation)
    assert _object_entry(line) is None  # not taken for an object line
    assert _other_line(None, "db", json.loads(line), None, None) == operation


@pytest.mark.parametrize("line", [
    {"type": "consistent", "table": "items", "user": "u", "client": "c", "rev": 1},
    {"type": "consistent", "table": "items", "user": "u", "client": "c", "operation": "{}"},
    {"type": "consistent", "table": "items", "user": 5, "client": "c", "rev": 1,
     "operation": "{}"},
    {"type": "consistent", "table": None, "user": "u", "client": "c", "rev": 1,
     "operation": "{}"},
    {"type": "consistent", "table": "items", "user": "u", "client": "c", "rev": True,
     "operation": "{}"},
    {"type": "consistent", "table": "items", "user": "u", "client": "c", "rev": 1,
     "operation": {"type": "delete"}},
])
def test_a_broken_where_clause_operation_line_is_refused(line):
    with pytest.raises(ProtocolError, match="not a where-clause operation line"):
        _other_line(None, "db", line, None, None)


def test_a_line_of_an_unknown_kind_is_refused_by_name():
    """A newer source's lines are refused, never taken for an object or dropped."""
    line = {"type": "someday", "table": "items", "id": "k", "realm": "r", "rev": 1}
    with pytest.raises(ProtocolError, match=r"kind 'someday'.*upgrade"):
        _other_line(None, "db", line, None, None)


@pytest.mark.parametrize("data", ["[1]", '"text"', "3"])
def test_data_that_is_no_object_is_refused(data):
    with pytest.raises(ProtocolError, match="must be an object or null"):
        _object_entry(f'{{"realm":"r","table":"t","id":"k","rev":1,"owner":null,"data":{data}}}')


def test_put_many_stores_awkward_text_exactly(app):
    """On PostgreSQL the batch goes as one array literal per column."""
    services = app.extensions["dxc"]
    db_id = create_database(services).db_id
    rows = [
        StoredObject("items", f"k{i}{text}", f"r{text}", text if i % 2 else None, i + 1,
                     i % 3 == 0, None if i % 3 == 0 else json.dumps({"t": text}))
        for i, text in enumerate(AWKWARD)
    ]
    shard = services.router.shard_for(db_id)
    with shard.transaction() as connection:
        ObjectStore(connection, db_id).put_many(rows)
    with shard.transaction() as connection:
        # written again, changed: a key present is replaced
        ObjectStore(connection, db_id).put_many([
            StoredObject(r.tbl, r.key, r.realm_id, r.owner, r.rev + 100, False, '{"again":1}')
            for r in rows[:3]
        ])
    with shard.transaction(read_only=True) as connection:
        stored = {(r.tbl, r.key): r for r in ObjectStore(connection, db_id).changed_rows(0, 1000)}
    expected = {(r.tbl, r.key): r for r in rows} | {
        (r.tbl, r.key): StoredObject(r.tbl, r.key, r.realm_id, r.owner, r.rev + 100, False,
                                     '{"again":1}')
        for r in rows[:3]
    }
    assert stored == expected
