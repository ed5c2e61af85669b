"""Copying a source without revisions by reading its whole export each round
(dxc.replication.full_reads), in-process on both backends: the source is another
database of the same installation, read through the export the ``dexie-cloud``
CLI gets (what Dexie Cloud's own service answers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dxc import tson
from dxc.manage.databases import create_database
from dxc.manage.exporter import export_ndjson
from dxc.manage.importer import import_document
from dxc.protocol import ProtocolError
from dxc.replication import job
from dxc.replication.full_reads import apply_export
from dxc.replication.job import _revisions_said
from dxc.storage import replications, tables
from dxc.storage.objects import ObjectStore, StoredObject
from dxc.storage.source_digests import SourceDigests

SCHEMA = {"items": "@id", "notes": "id"}
REALM = "rlmShared"


def export_lines(services, db_id: str) -> list[bytes]:
    return "".join(export_ndjson(services, db_id)).encode().splitlines()


def live(services, db_id: str) -> dict[tuple[str, str], tuple[str, dict]]:
    with services.router.shard_for(db_id).transaction(read_only=True) as connection:
        store = ObjectStore(connection, db_id)
        return {
            (row.tbl, row.key): (row.realm_id, tson.loads(row.value))
            for table in ("items", "notes", "roles")
            for row in store.listing(table) if not row.deleted
        }


def stored_rows(services, db_id: str) -> dict[tuple[str, str], StoredObject]:
    with services.router.shard_for(db_id).transaction(read_only=True) as connection:
        return {(r.tbl, r.key): r for r in ObjectStore(connection, db_id).changed_rows(0, 10**9)}


def copy(services, source: str, target: str) -> tuple[int, int, list[int]]:
    """One round; (written, deleted, the progress calls' counts)."""
    calls: list[int] = []
    found = apply_export(services, target, export_lines(services, source), calls.append)
    return found.written, found.deleted, calls


@pytest.fixture
def pair(services) -> tuple[str, str]:
    source, target = create_database(services).db_id, create_database(services).db_id
    import_document(services, source, {
        "schema": SCHEMA,
        "demoUsers": {"alice@demo.local": {}},
        "roles": {"reader": {"permissions": {"add": ["items"]}}},
        "data": {REALM: {
            "items": {f"itm{n}": {"title": f"item {n}", "owner": "alice@demo.local"}
                      for n in range(5)},
            "notes": {"n1": {"text": "a note"}},
        }},
    })
    return source, target


def test_the_first_read_copies_everything_and_registers_the_schema(services, pair):
    source, target = pair
    written, deleted, calls = copy(services, source, target)
    assert (written, deleted) == (7, 0)  # 5 items, a note, a role
    assert sum(calls) == 7
    assert live(services, target) == live(services, source)
    copied = stored_rows(services, target)[("items", "itm0")]
    assert (copied.realm_id, copied.owner) == (REALM, "alice@demo.local")
    with services.control.connect() as connection:
        assert set(tables.get_tables(connection, target)) >= {"items", "notes"}


def test_a_later_read_applies_only_what_changed_at_the_source(services, pair):
    source, target = pair
    copy(services, source, target)
    before = stored_rows(services, target)
    import_document(services, source, {"data": {REALM: {"items": {
        "itm1": {"title": "changed", "owner": "alice@demo.local"},
        "itm2": None,
        "itm9": {"title": "new", "owner": "alice@demo.local"},
    }}}})
    written, deleted, _ = copy(services, source, target)
    assert (written, deleted) == (2, 1)
    assert live(services, target) == live(services, source)
    after = stored_rows(services, target)
    assert after[("items", "itm2")].deleted
    unchanged = [place for place in before if place[1] not in ("itm1", "itm2")]
    assert all(after[place].rev == before[place].rev for place in unchanged)
    assert after[("items", "itm1")].rev > before[("items", "itm1")].rev
    assert copy(services, source, target)[:2] == (0, 0)  # nothing new: nothing written


def test_writes_made_here_stay_until_the_source_changes_the_object(services, pair):
    source, target = pair
    copy(services, source, target)
    import_document(services, target, {"data": {REALM: {"items": {
        "itm0": {"title": "edited here", "owner": "alice@demo.local"},
        "itmHere": {"title": "made here", "owner": "alice@demo.local"},
    }}}})
    copy(services, source, target)
    titles = {key: value["title"] for (table, key), (_, value) in live(services, target).items()
              if table == "items"}
    assert titles["itm0"] == "edited here" and titles["itmHere"] == "made here"
    import_document(services, source, {"data": {REALM: {"items": {
        "itm0": {"title": "edited there", "owner": "alice@demo.local"},
    }}}})
    copy(services, source, target)
    assert live(services, target)[("items", "itm0")][1]["title"] == "edited there"


def test_a_cut_export_deletes_nothing(services, pair):
    source, target = pair
    copy(services, source, target)
    before = stored_rows(services, target)
    lines = export_lines(services, source)

    def cut() -> Iterator[bytes]:
        yield from lines[:4]  # header, schema, roles, demo users: no object yet
        raise ConnectionError("the source went away")

    with pytest.raises(ConnectionError):
        apply_export(services, target, cut(), lambda rows: None)
    assert stored_rows(services, target) == before
    with services.router.shard_for(target).transaction(read_only=True) as connection:
        assert len(list(SourceDigests(connection, target).places())) == 7


@pytest.mark.parametrize("lines", [[], [b'{"realm":"r","table":"t","id":"k","data":{}}']])
def test_an_answer_without_a_header_is_refused_before_anything_is_applied(lines):
    with pytest.raises(ProtocolError, match="does not begin with a header"):
        _revisions_said(iter(lines))


def test_the_header_tells_a_dxc_server_from_another_source():
    dxc = [b'{"type":"header","version":2,"dbId":"z1","since":0,"revision":"1:4"}', b"{}"]
    other = [b'{"type":"header","version":1,"dbId":"z1","exportedAt":"2026-12-07T00:00:00Z"}']
    lines, revisions = _revisions_said(iter(dxc))
    assert revisions and list(lines) == dxc
    lines, revisions = _revisions_said(iter(other))
    assert not revisions and list(lines) == other


class PlainExportSource:
    """A source that answers every export with ``lines``, whatever it is asked."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    def changes(self, since: int) -> Iterator[bytes]:
        return iter(self.lines)

    def export(self) -> Iterator[bytes]:
        return iter(self.lines)


def test_a_copy_holding_the_source_revisions_refuses_an_answer_without_them(services, pair):
    """Full reads would write revisions of its own into a copy whose revisions are the
    source's (and unfreeze it): a source that stops giving revisions stops the copy."""
    source, target = pair
    with services.control.begin() as connection:
        replications.create(connection, target, "http://source.example/z1", "client", "sealed")
        assert replications.claim(connection, target, "job", 30)
        assert replications.record_round(
            connection, target, "job", checkpoint=3, source_shard=1, source_head=3,
            source_counts={}, source_blobs=None, source_ydocs=None, copied=0, lease_seconds=30,
        )
    plain = PlainExportSource(export_lines(services, source))
    state = job._JobState(settings_due=float("inf"))
    with pytest.raises(ProtocolError, match="gives no revision any more"):
        job._one_round(services, target, "job", plain, state)
    assert live(services, target) == {}
