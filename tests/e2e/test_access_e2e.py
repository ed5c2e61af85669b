"""Sharing end to end: two real dexie-cloud-addon users, an invitation, and two who are not invited.

Runs ``node/scenarios/sharing.mjs`` (see its header) on SQLite and PostgreSQL.
"""

from __future__ import annotations

from tests.e2e.test_sync_e2e import assert_clean_log, scenario, stored_texts, titles

ALICE = "alice@demo.local"
BOB = "bob@demo.local"
CAROL = "carol@demo.local"


def test_invited_user_shares_a_realm_until_removed(server):
    url = server.create_database(demo_users=(ALICE, BOB, CAROL))
    result = scenario(server, "sharing", databaseUrl=url, alice=ALICE, bob=BOB, carol=CAROL)
    realm = result["realmId"]

    assert result["invite"]["realmName"] == "Groceries", "the invitee gets the realm row"
    assert result["invite"]["invitedBy"]["userId"] == ALICE, "the server signs the invitation"
    assert result["invite"]["accepted"] is None
    assert titles(result["bobAfterAccept"]) == ["milk"], "an accepted realm arrives in full"

    assert "MILK (edited by Bob)" in titles(result["bobLocalEdit"]), "the client allows it locally"
    bob = {item["title"]: item for item in result["bobAfterRefusal"]}
    assert sorted(bob) == ["eggs", "milk"], "the title edit is rolled back on Bob's device"
    assert bob["milk"]["done"] is True, "an edit Bob's permissions cover stays"
    alice = {item["title"]: item for item in result["aliceAfterBob"]}
    assert sorted(alice) == ["eggs", "milk"] and alice["milk"]["done"] is True
    assert alice["eggs"]["owner"] == BOB and alice["eggs"]["realmId"] == realm
    assert sorted((m["userId"], m["accepted"]) for m in result["bobMembers"]) == [
        (ALICE, True),  # the owner's member row, added by the server
        (BOB, True),
    ]

    for seen in result["outsiders"]:
        assert seen["carol"] == {"items": [], "realms": [], "members": []}
        assert seen["anonymous"] == {"items": [], "realms": []}

    assert realm not in result["bobRealmsAfterRemoval"]
    assert result["bobAfterRemoval"] == [], "the realm's objects leave the removed member"
    assert result["bobRealmRowsAfterRemoval"] == []
    assert not [t for t in stored_texts(server, url) if "edited by Bob" in t]
    assert_clean_log(server)


def test_another_users_where_clauses_leave_offline_writes_alone(server):
    """Security issue 11: where-clause operations are replayed only with their issuer's rights."""
    mallory = "mallory@demo.local"
    url = server.create_database(demo_users=(ALICE, mallory))
    result = scenario(server, "cross_user_rebase", databaseUrl=url, alice=ALICE, mallory=mallory)
    mine = sorted((item["title"], item["n"]) for item in result["phone"])
    assert mine == [("eggs", 2), ("milk", 1)], "Alice's writes arrive as she made them"
    assert result["laptop"] == result["phone"], "Alice's devices converge"
    assert result["mallory"] == [], "Mallory's clear() emptied her own view"
    assert not [t for t in stored_texts(server, url) if "pwned" in t]
    assert_clean_log(server)
