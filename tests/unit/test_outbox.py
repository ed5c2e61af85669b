"""The outbox merges the changes that come while a batch is on its way."""

from __future__ import annotations

from dxc.bus.base import Awareness, Change
from dxc.bus.outbox import Outbox


def test_changes_that_come_while_a_batch_is_sent_go_out_merged_in_the_next():
    batches: list[list[Change]] = []

    def send(batch: list[Change]) -> None:
        batches.append(batch)
        if len(batches) == 1:  # the first batch is on its way: more commits come
            outbox.put(Change.committed("db1", 1, 5, {"rlmA"}, {"items"}, "phone"))
            outbox.put(Change.committed("db2", 1, 9, {"rlmZ"}, {"items"}, "phone"))
            outbox.put(Change.committed("db1", 1, 7, {"rlmB"}, {"members"}, "laptop"))
            outbox.put(Change.committed("db1", 1, 6, {"rlmA"}, {"items"}, "phone"))

    outbox = Outbox(send)
    first = Change.committed("db1", 1, 4, {"rlmA"}, {"items"}, "phone")
    outbox.put(first)
    assert batches[0] == [first]
    db1, db2 = batches[1]
    assert (db1.db_id, db1.rev, db1.realms, db1.realm_sets, db1.client_id) == (
        "db1", 7, {"rlmA", "rlmB"}, True, None
    )
    assert (db2.rev, db2.realms, db2.client_id) == (9, {"rlmZ"}, "phone")
    assert len(batches) == 2


def test_a_change_of_unknown_realms_or_revision_stays_unknown_when_merged():
    known = Change.committed("db1", 1, 4, {"rlmA"}, {"items"}, "phone")
    anything = Change.anything("db1", 1)
    assert known.merged(anything).realms is None
    assert known.merged(anything).rev is None
    assert anything.merged(known).realm_sets


def test_awareness_updates_are_sent_one_by_one_in_their_order():
    batches: list[list[Change]] = []
    outbox = Outbox(batches.append)
    updates = [
        Change.aware("db1", "rlmA", Awareness("docs", "text", "doc1", bytes([n]), "s1"))
        for n in range(3)
    ]
    for update in updates:
        outbox.put(update)
    assert [change for batch in batches for change in batch] == updates


def test_a_failed_send_is_logged_and_the_next_change_still_goes_out(caplog):
    batches: list[list[Change]] = []

    def send(batch: list[Change]) -> None:
        if not batches:
            batches.append([])
            raise ConnectionError("database down")
        batches.append(batch)

    outbox = Outbox(send)
    outbox.put(Change.anything("db1", 1, 3))
    later = Change.anything("db1", 1, 4)
    outbox.put(later)
    assert batches[1] == [later]
    assert "could not send 1 changes" in caplog.text


def test_an_outage_is_one_line_in_the_log(caplog):
    def send(batch: list[Change]) -> None:
        raise ConnectionError("database down")

    Outbox(send, outages=(ConnectionError,)).put(Change.anything("db1", 1, 3))
    assert "could not send 1 changes (ConnectionError)" in caplog.text
    assert "Traceback" not in caplog.text
