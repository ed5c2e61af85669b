"""A push's revision and the claims of its txids, taken together
(ObjectStore.next_revision_claiming: one statement on PostgreSQL)."""

from __future__ import annotations

import pytest

from dxc.errors import Moving
from dxc.storage.router import NotOnShard


def recorded(in_store, upto=1000):
    return {(r.user_id, r.client_identity, r.txid, r.rev)
            for r in in_store(lambda s: list(s.applied_rows(0, upto)))}


def test_claims_are_made_at_the_revision_taken_and_a_resend_is_told(in_store):
    first = in_store(lambda s: s.next_revision_claiming("ann", "dev1", {"t1", "t2"}))
    rev = first[0]
    assert first == (rev, {"t1", "t2"})
    # a resend of t2 with a new t3; another user's and another device's t1 are their own
    assert in_store(lambda s: s.next_revision_claiming("ann", "dev1", {"t2", "t3"})) == (
        rev + 1, {"t3"})
    assert in_store(lambda s: s.next_revision_claiming("bob", "dev1", {"t1"})) == (rev + 2, {"t1"})
    assert in_store(lambda s: s.next_revision_claiming("ann", "dev2", {"t1"})) == (rev + 3, {"t1"})
    assert in_store(lambda s: s.next_revision_claiming("ann", "dev1", set())) == (rev + 4, set())
    assert recorded(in_store) == {
        ("ann", "dev1", "t1", rev), ("ann", "dev1", "t2", rev), ("ann", "dev1", "t3", rev + 1),
        ("bob", "dev1", "t1", rev + 2), ("ann", "dev2", "t1", rev + 3),
    }
    assert in_store(lambda s: s.head()) == (rev + 4, False)


def test_awkward_txids_are_claimed_as_sent(in_store):
    txids = {'a "quoted" \\ txid', "{braces},[commas]", "NULL", "", "é\U0001f600"}
    rev, claimed = in_store(lambda s: s.next_revision_claiming("ann", "dev1", txids))
    assert claimed == txids
    assert {txid for *_, txid, _ in recorded(in_store)} == txids
    assert in_store(lambda s: s.next_revision_claiming("ann", "dev1", txids)) == (rev + 1, set())


def test_a_frozen_database_takes_no_revision_and_keeps_no_claim(in_store):
    in_store(lambda s: s.freeze())
    with pytest.raises(Moving):
        in_store(lambda s: s.next_revision_claiming("ann", "dev1", {"t1"}))
    in_store(lambda s: s.freeze(False))
    assert recorded(in_store) == set()
    assert in_store(lambda s: s.next_revision_claiming("ann", "dev1", {"t1"}))[1] == {"t1"}


def test_a_database_not_on_the_shard_takes_nothing(in_store):
    with pytest.raises(NotOnShard):
        in_store(lambda s: s.next_revision_claiming("ann", "dev1", {"t1"}), db="zelsewhere")
    assert in_store(lambda s: list(s.applied_rows(0, 1000)), db="zelsewhere") == []
