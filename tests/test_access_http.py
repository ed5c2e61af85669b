"""Access control, sharing and invitations over ``/sync``, in-process, on SQLite and PostgreSQL.

Requests are forged the way a malicious or confused client could build
them: writes to other users' realms, someone else's ``owner``, the public
realm, accepting someone else's invitation, joining a realm uninvited,
resending old revisions. Nothing may be stored and nothing may leak.
"""

from __future__ import annotations

import pytest

from dxc import tson
from dxc.auth.tokens import AccessClaims
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.storage import schema
from tests.protocol_client import ALICE, BOB, Device, item

CAROL = "carol@demo.local"
REALM = "rlmShared1"
DOER = {"add": ["items"], "update": {"items": ["done"]}}


@pytest.fixture
def app(mail_app):
    return mail_app


@pytest.fixture
def db_url(app) -> str:
    services = app.extensions["dxc"]
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}, BOB: {}, CAROL: {}}})
    return created.url


@pytest.fixture
def device(app, db_url):
    count = 0

    def make(user: str | None, scopes: tuple[str, ...] = ()) -> Device:
        nonlocal count
        count += 1
        dev = Device(app.test_client(), db_url, f"{user}-{count}")
        if user:
            dev.login(user)
        if scopes:
            claims = AccessClaims(user, frozenset({"ACCESS_DB", *scopes}), "demo", user, None)
            dev.token = app.extensions["dxc"].signer.issue(dev.db_id, claims).token
        return dev

    return make


def realm(key: str = REALM, owner: str = ALICE, **fields) -> dict:
    return {"realmId": key, "owner": owner, "name": "groceries", **fields}


def member(key: str, realm_id: str = REALM, owner: str = ALICE, **fields) -> dict:
    return {"id": key, "realmId": realm_id, "owner": owner, **fields}


def rejected(answer: dict) -> list[str]:
    return [r["txid"] for r in answer["rejections"]]


def stored(app, dev: Device, table: str, key: str) -> dict | None:
    """The server's live object, read from the database (not through a sync)."""
    objects = schema.objects
    shard = app.extensions["dxc"].router.shard_for(dev.db_id)
    with shard.transaction(read_only=True) as connection:
        row = connection.execute(
            objects.select().where(
                objects.c.db_id == dev.db_id, objects.c.tbl == table, objects.c.key == key
            )
        ).first()
    return None if row is None or row.deleted else tson.loads(row.value)


def share(alice: Device, permissions: dict | None = None, **fields) -> dict:
    """Alice creates REALM with an item and invites Bob to it, in one transaction."""
    permissions = DOER if permissions is None else permissions
    invite = member("mmbBob", email=BOB, invite=True, permissions=permissions, **fields)
    answer = alice.sync([
        alice.op("realms", "insert", [REALM], "share", values=[realm()]),
        alice.op("items", "insert", ["itmA"], "share", values=[item("itmA", realm=REALM)]),
        alice.op("members", "insert", ["mmbBob"], "share", values=[invite]),
    ])
    assert rejected(answer) == []
    return answer


def accept(bob: Device, key: str = "mmbBob") -> dict:
    when = tson.Date("2001-01-01T00:00:00.000Z")  # the server stamps its own time
    return bob.sync(
        [bob.op("members", "update", [key], "accept", changeSpecs=[{"accepted": when}])]
    )


# --- the sharing flow ------------------------------------------------------------------------


def test_invitation_accepted_then_shared_both_ways(device, mailbox):
    alice, bob = device(ALICE), device(BOB)
    bob.sync()
    answer = share(alice)
    assert REALM in answer["realms"]
    owner_rows = [m for m in alice.state["members"].values() if m.get("userId") == ALICE]
    assert len(owner_rows) == 1, "the server adds the owner's member row"
    assert owner_rows[0]["accepted"] and owner_rows[0]["email"] == ALICE
    invite = alice.state["members"]["mmbBob"]
    assert invite["invitedBy"] == {"name": "alice", "email": ALICE, "userId": ALICE}
    assert isinstance(invite["invitedDate"], tson.Date)
    assert "accepted" not in invite and "userId" not in invite

    answer = bob.sync()
    assert answer["inviteRealms"] == [REALM]
    assert REALM not in answer["realms"]
    assert set(bob.state["realms"]) == {REALM}
    assert set(bob.state["members"]) == {"mmbBob"}, "an invitee sees only its own member row"
    assert "itmA" not in bob.state.get("items", {})

    answer = accept(bob)
    assert REALM in answer["realms"] and answer["inviteRealms"] == []
    mine = bob.state["members"]["mmbBob"]
    assert mine["userId"] == BOB
    assert mine["accepted"] != tson.Date("2001-01-01T00:00:00.000Z")
    assert "itmA" in bob.state["items"], "a realm newly visible arrives in full"
    assert len(bob.state["members"]) == 2

    answer = bob.sync([bob.op("items", "insert", ["itmB"], "b1",
                              values=[item("itmB", owner=BOB, realm=REALM, title="by bob")])])
    assert rejected(answer) == []
    alice.sync()
    assert alice.state["items"]["itmB"]["title"] == "by bob"
    mail = mailbox.wait_for_mail(BOB)
    assert mail["template"] == "invite" and "groceries" in mail["text"]


def test_invitee_email_is_matched_case_insensitively(device):
    alice, bob = device(ALICE), device(BOB)
    alice.sync([alice.op("realms", "insert", [REALM], "r", values=[realm()]),
                alice.op("members", "insert", ["mmbBob"], "r",
                         values=[member("mmbBob", email="  Bob@Demo.LOCAL ")])])
    assert alice.state["members"]["mmbBob"]["email"] == BOB
    assert bob.sync()["inviteRealms"] == [REALM]


def test_rejected_invitation_stays_an_invitation_and_can_be_accepted_later(device):
    alice, bob = device(ALICE), device(BOB)
    share(alice)
    bob.sync()
    when = tson.Date("2001-01-01T00:00:00.000Z")
    answer = bob.sync([bob.op("members", "update", ["mmbBob"], "no",
                              changeSpecs=[{"rejected": when}])])
    assert answer["inviteRealms"] == [REALM]
    assert bob.state["members"]["mmbBob"]["rejected"] != when
    assert accept(bob)["realms"].count(REALM) == 1
    assert "rejected" not in bob.state["members"]["mmbBob"], "accepted and rejected are exclusive"


def test_permissions_limit_what_a_member_changes(device):
    alice, bob = device(ALICE), device(BOB)
    share(alice)
    accept(bob)
    answer = bob.sync([bob.op("items", "update", ["itmA"], "t", changeSpecs=[{"title": "mine"}])])
    assert rejected(answer) == ["t"]
    assert "title" not in bob.state["items"]["itmA"], "rolled back on the device"
    answer = bob.sync([bob.op("items", "update", ["itmA"], "d", changeSpecs=[{"done": True}])])
    assert rejected(answer) == []
    for txid, spec in (("o", {"owner": BOB}), ("r", {"realmId": BOB})):
        answer = bob.sync([bob.op("items", "update", ["itmA"], txid, changeSpecs=[spec])])
        assert rejected(answer) == [txid]
    answer = bob.sync([bob.op("items", "delete", ["itmA"], "x")])
    assert rejected(answer) == ["x"]
    assert bob.state["items"]["itmA"]["owner"] == ALICE
    answer = bob.sync([bob.op("items", "insert", ["itmC"], "c",
                              values=[item("itmC", owner=ALICE, realm=REALM)])])
    assert rejected(answer) == ["c"], "creating objects owned by someone else needs manage"


def test_owners_keep_full_rights_on_their_objects(device):
    alice, bob = device(ALICE), device(BOB)
    share(alice, permissions={"add": ["items"]})
    accept(bob)
    mine = item("itmB", owner=BOB, realm=REALM)
    bob.sync([bob.op("items", "insert", ["itmB"], "b", values=[mine])])
    answer = bob.sync([
        bob.op("items", "update", ["itmB"], "u", changeSpecs=[{"title": "x"}]),
        bob.op("items", "delete", ["itmB"], "del"),
    ])
    assert rejected(answer) == []


def test_moving_needs_source_rights_and_destination_add(device):
    alice, bob = device(ALICE), device(BOB)
    share(alice)
    accept(bob)
    private = item("itmP", owner=BOB, realm=BOB)
    bob.sync([bob.op("items", "insert", ["itmP"], "p", values=[private])])
    answer = bob.sync([bob.op("items", "update", ["itmP"], "in",
                              changeSpecs=[{"realmId": REALM}])])
    assert rejected(answer) == [], "own object, destination grants add on items"
    answer = bob.sync([bob.op("items", "update", ["itmA"], "out", changeSpecs=[{"realmId": BOB}])])
    assert rejected(answer) == ["out"], "Alice's object: Bob may not change its realmId"
    # Alice moves her item to her private realm: it leaves Bob's device.
    alice.sync([alice.op("items", "update", ["itmA"], "mine", changeSpecs=[{"realmId": ALICE}])])
    bob.sync()
    assert "itmA" not in bob.state["items"]


def test_create_realm_then_move_into_it_in_one_transaction(device):
    alice = device(ALICE)
    alice.sync([alice.op("items", "insert", ["itmL"], "l", values=[item("itmL")])])
    answer = alice.sync([
        alice.op("realms", "upsert", ["rlm~itmL"], "t", values=[realm("rlm~itmL")]),
        alice.op("items", "update", ["itmL"], "t", changeSpecs=[{"realmId": "rlm~itmL"}]),
    ])
    assert rejected(answer) == []
    assert alice.state["items"]["itmL"]["realmId"] == "rlm~itmL"


def test_roles_global_and_realm_local(app, device):
    services = app.extensions["dxc"]
    alice, bob = device(ALICE), device(BOB)
    import_document(services, alice.db_id, {"roles": {
        "doer": {"permissions": DOER},
        "titler": {"permissions": {"update": {"items": ["title"]}}},
    }})
    share(alice, permissions={}, roles=["doer", "titler"])
    accept(bob)
    answer = bob.sync([bob.op("items", "update", ["itmA"], "t",
                              changeSpecs=[{"title": "t", "done": True}])])
    assert rejected(answer) == [], "the union of two roles keeps both tables' properties"
    # A realm-local role of the same name wins over the global one.
    local = {"realmId": REALM, "name": "doer", "permissions": {}, "owner": ALICE}
    key = '["rlmShared1","doer"]'
    answer = alice.sync([alice.op("roles", "insert", [key], "l", values=[local])])
    assert rejected(answer) == [], answer["rejections"]
    answer = bob.sync([bob.op("items", "insert", ["itmD"], "d",
                              values=[item("itmD", owner=BOB, realm=REALM)])])
    assert rejected(answer) == ["d"]
    # Nobody escalates with a role stored under someone else's realm key.
    forged = {"realmId": BOB, "name": "doer", "permissions": {"manage": "*"}, "owner": BOB}
    answer = bob.sync([bob.op("roles", "insert", ['["rlmShared1","doer"]'], "f", values=[forged])])
    assert rejected(answer) == ["f"]


# --- forged requests -------------------------------------------------------------------------


def test_nobody_accepts_someone_elses_invitation(device, app):
    alice, _bob, carol = device(ALICE), device(BOB), device(CAROL)
    share(alice)
    when = tson.Date("2030-01-01T00:00:00.000Z")
    for dev in (carol, alice):
        answer = dev.sync([dev.op("members", "update", ["mmbBob"], "steal",
                                  changeSpecs=[{"accepted": when}])])
        assert rejected(answer) == ["steal"]
    assert "accepted" not in stored(app, alice, "members", "mmbBob")
    answer = carol.sync([carol.op("members", "update", ["mmbBob"], "claim",
                                  changeSpecs=[{"userId": CAROL, "email": CAROL}])])
    assert rejected(answer) == ["claim"]
    assert REALM not in carol.sync()["realms"]


def test_nobody_joins_a_realm_uninvited(device):
    alice, carol = device(ALICE), device(CAROL)
    share(alice)
    attempts = [
        member("mmbC1", owner=CAROL, userId=CAROL),
        member("mmbC2", owner=CAROL, email=CAROL),
        member("mmbC3", owner=CAROL, userId=CAROL, accepted=tson.Date("2030-01-01T00:00:00Z")),
    ]
    for index, value in enumerate(attempts):
        answer = carol.sync([carol.op("members", "insert", [value["id"]], f"j{index}",
                                      values=[value])])
        assert rejected(answer) == [f"j{index}"]
    answer = carol.sync([carol.op("realms", "upsert", [REALM], "own",
                                  values=[realm(owner=CAROL)])])
    assert rejected(answer) == ["own"], "an existing realm is not created again"
    answer = carol.sync()
    assert REALM not in answer["realms"] + answer["inviteRealms"]
    assert not carol.state.get("items") and not carol.state.get("members")


def test_third_user_and_anonymous_see_nothing_even_with_old_revisions(device):
    alice, bob, carol, anonymous = device(ALICE), device(BOB), device(CAROL), device(None)
    share(alice)
    carol.sync()
    anonymous.sync()
    forged = {"serverRevision": "1:0", "realms": [REALM, ALICE, BOB], "inviteRealms": [REALM]}
    for dev in (carol, anonymous):
        dev.last_pull = forged
        answer = dev.sync()
        assert REALM not in answer["realms"] + answer["inviteRealms"]
        assert ALICE not in answer["realms"]
        assert not dev.state.get("items") and not dev.state.get("realms")
    assert bob.sync()["inviteRealms"] == [REALM]


def test_removed_member_loses_the_realm(device):
    alice, bob = device(ALICE), device(BOB)
    share(alice)
    accept(bob)
    before = bob.last_pull
    alice.sync([alice.op("members", "delete", ["mmbBob"], "kick")])
    alice.sync([alice.op("items", "update", ["itmA"], "later", changeSpecs=[{"title": "secret"}])])
    answer = bob.sync()
    assert REALM not in answer["realms"] + answer["inviteRealms"]
    bob.last_pull = before  # a resend from before the removal changes nothing
    answer = bob.sync([bob.op("items", "update", ["itmA"], "late", changeSpecs=[{"done": 1}])])
    assert rejected(answer) == ["late"]
    assert REALM not in answer["realms"]
    assert "secret" not in str(answer["changes"])


def test_public_realm_is_read_only_without_global_write(device, app):
    alice = device(ALICE)
    import_document(app.extensions["dxc"], alice.db_id,
                    {"data": {"rlm-public": {"items": {"itmPub": {"title": "public"}}}}})
    alice.sync()
    answer = alice.sync([
        alice.op("items", "insert", ["itmX"], "add", values=[item("itmX", realm="rlm-public")]),
    ])
    assert rejected(answer) == ["add"]
    answer = alice.sync([alice.op("items", "update", ["itmPub"], "upd",
                                  changeSpecs=[{"title": "mine"}])])
    assert rejected(answer) == ["upd"]
    assert alice.state["items"]["itmPub"]["title"] == "public"
    admin = device(ALICE, scopes=("GLOBAL_WRITE",))
    answer = admin.sync([admin.op("items", "update", ["itmPub"], "ok",
                                  changeSpecs=[{"title": "edited"}])])
    assert rejected(answer) == []
    assert stored(app, alice, "items", "itmPub")["title"] == "edited"


def test_owner_member_stays_and_ownership_moves_only_to_members(device):
    alice, bob = device(ALICE), device(BOB)
    share(alice)
    owner_key = next(k for k, m in alice.state["members"].items() if m.get("userId") == ALICE)
    answer = alice.sync([alice.op("members", "delete", [owner_key], "leave")])
    assert rejected(answer) == ["leave"]
    answer = alice.sync([alice.op("realms", "update", [REALM], "give",
                                  changeSpecs=[{"owner": BOB}])])
    assert rejected(answer) == ["give"], "Bob has not accepted yet"
    accept(bob)
    answer = bob.sync([bob.op("realms", "update", [REALM], "take", changeSpecs=[{"owner": BOB}])])
    assert rejected(answer) == ["take"], "only the owner or a manager gives a realm away"
    answer = alice.sync([alice.op("realms", "update", [REALM], "give",
                                  changeSpecs=[{"owner": BOB}])])
    assert rejected(answer) == []
    answer = bob.sync([bob.op("members", "delete", ["mmbBob"], "leave")])
    assert rejected(answer) == ["leave"], "the new owner cannot leave"


def test_server_fields_of_members_cannot_be_forged(device):
    alice = device(ALICE)
    alice.sync([alice.op("realms", "insert", [REALM], "r", values=[realm()])])
    forged = member("mmbBob", email=BOB, invitedBy={"name": "mallory"},
                    invitedDate=tson.Date("2001-01-01T00:00:00.000Z"),
                    accepted=tson.Date("2001-01-01T00:00:00.000Z"))
    alice.sync([alice.op("members", "insert", ["mmbBob"], "m", values=[forged])])
    row = alice.state["members"]["mmbBob"]
    assert row["invitedBy"]["userId"] == ALICE and "accepted" not in row
    answer = alice.sync([alice.op("members", "update", ["mmbBob"], "u",
                                  changeSpecs=[{"invitedBy": {"name": "mallory"}}])])
    assert rejected(answer) == []
    assert alice.state["members"]["mmbBob"]["invitedBy"]["userId"] == ALICE


def test_realm_delete_cascades_members_and_needs_an_empty_realm(device, app):
    alice, bob = device(ALICE), device(BOB)
    share(alice)
    answer = alice.sync([alice.op("realms", "delete", [REALM], "del")])
    assert rejected(answer) == ["del"], "itmA still lives in the realm"
    answer = alice.sync([
        alice.op("items", "delete", ["itmA"], "del2"),
        alice.op("realms", "delete", [REALM], "del2"),
    ])
    assert rejected(answer) == []
    assert stored(app, alice, "members", "mmbBob") is None
    assert REALM not in answer["realms"]
    assert bob.sync()["inviteRealms"] == []


def test_realm_ids_and_private_ids(device, app):
    alice, carol = device(ALICE), device(CAROL)
    import_document(app.extensions["dxc"], alice.db_id,
                    {"data": {"rlmTaken": {"items": {"itmT": {"title": "old data"}}}}})
    cases = [
        ("realms", "rlmTaken", realm("rlmTaken", owner=CAROL)),  # objects already use it
        ("realms", "rlm-public", realm("rlm-public", owner=CAROL)),
        ("realms", "rlmX", realm("rlmX", owner=ALICE)),  # owned by someone else
        ("items", f"#pref:{ALICE}", item(f"#pref:{ALICE}", owner=CAROL, realm=CAROL)),
        ("items", f"#pref:{CAROL}", item(f"#pref:{CAROL}", owner=CAROL, realm="rlmTaken")),
        ("items", "itmU", item("itmU", owner=CAROL, realm="unauthorized")),
        ("items", "itmV", item("itmV", owner="unauthorized", realm=CAROL)),
        ("items", "itmW", item("itmW", owner=ALICE, realm=CAROL)),
    ]
    for index, (table, key, value) in enumerate(cases):
        answer = carol.sync([carol.op(table, "insert", [key], f"c{index}", values=[value])])
        assert rejected(answer) == [f"c{index}"], (table, key)
    answer = carol.sync()
    assert "itmT" not in carol.state.get("items", {})


def test_login_upload_is_judged_key_by_key(device, app):
    alice = device(ALICE)
    values = [item("itm1"), item("itm2", realm="rlm-public"), item("itm3")]
    answer = alice.sync([alice.op("items", "upsert", ["itm1", "itm2", "itm3"], "upload-abc",
                                  values=values)])
    assert [r["txid"] for r in answer["rejections"]] == ["upload-abc"]
    assert sorted(alice.state["items"]) == ["itm1", "itm3"]
    assert stored(app, alice, "items", "itm2") is None


def test_invite_flag_set_later_mails_then(device, mailbox):
    alice = device(ALICE)
    alice.sync([alice.op("realms", "insert", [REALM], "r", values=[realm()]),
                alice.op("members", "insert", ["mmbC"], "r", values=[member("mmbC", email=CAROL)])])
    alice.sync([alice.op("members", "update", ["mmbC"], "i", changeSpecs=[{"invite": True}])])
    assert mailbox.wait_for_mail(CAROL)["template"] == "invite"
    assert len(mailbox.mails_to(CAROL)) == 1, "the row without invite: true was not mailed"


# --- one user's writes never reach into another's data (security issue 11) -------------------

EVERYTHING = {"index": None, "range": {"type": 3}}  # what db.items.clear() sends
TAGGED = {"index": "tag", "range": {"type": 1, "lower": "T", "upper": "T"}}


def offline_device(device, user: str) -> tuple[Device, str]:
    """A second device of ``user`` that synced once and then went offline."""
    phone = device(user)
    phone.sync()
    return phone, phone.last_pull["serverRevision"]


def push_offline(phone: Device, base: str, values: list[dict], txid: str) -> dict:
    keys = [value["id"] for value in values]
    return phone.sync(
        [phone.op("items", "insert", keys, txid, values=values)],
        base_revs=[{"tableName": "items", "clientRev": phone.mutation_rev + 1, "serverRev": base}],
    )


def test_where_clauses_of_another_user_never_touch_private_offline_inserts(device, app):
    alice, mallory = device(ALICE), device(BOB)
    phone, base = offline_device(device, ALICE)
    mallory.sync([
        mallory.op("items", "delete", [], "m1", criteria=EVERYTHING),
        mallory.op("items", "modify", [], "m2", criteria=TAGGED,
                   changeSpec={"title": "pwned", "big": "x" * 10_000}),
        mallory.op("items", "modify", [], "m3", criteria=TAGGED, changeSpec={"realmId": BOB}),
    ])
    answer = push_offline(phone, base, [item("itm1", tag="T", title="mine"), item("itm2")], "a1")
    assert rejected(answer) == []
    assert stored(app, alice, "items", "itm1") == item("itm1", tag="T", title="mine")
    assert stored(app, alice, "items", "itm2") == item("itm2")
    alice.sync()
    assert alice.state["items"]["itm1"]["title"] == "mine"


def test_where_clauses_of_the_same_user_still_rebase_offline_inserts(device, app):
    alice = device(ALICE)
    phone, base = offline_device(device, ALICE)
    alice.sync([alice.op("items", "modify", [], "a1", criteria=TAGGED, changeSpec={"done": 1})])
    push_offline(phone, base, [item("itm1", tag="T")], "p1")
    assert stored(app, alice, "items", "itm1")["done"] == 1


def test_a_members_where_clause_acts_only_with_the_members_rights(device, app):
    alice, bob = device(ALICE), device(BOB)
    share(alice)  # bob may add items and update "done" in REALM
    accept(bob)
    phone, base = offline_device(device, ALICE)
    bob.sync([
        bob.op("items", "modify", [], "b1", criteria=TAGGED, changeSpec={"done": True}),
        bob.op("items", "modify", [], "b2", criteria=TAGGED, changeSpec={"title": "bob's"}),
    ])
    bob.sync([bob.op("items", "delete", [], "b3", criteria=EVERYTHING)])
    push_offline(phone, base, [item("itmS", realm=REALM, tag="T", title="alice's"),
                               item("itmP", tag="T", title="private")], "p1")
    shared = stored(app, alice, "items", "itmS")
    assert shared is not None, "bob may not delete alice's objects: his clear() skips them"
    assert shared["done"] is True, "bob may update done in the shared realm"
    assert shared["title"] == "alice's", "bob may not change titles"
    assert stored(app, alice, "items", "itmP") == item("itmP", tag="T", title="private")


def test_same_client_identity_and_txid_of_another_user_is_applied(device, app):
    alice, bob = device(ALICE), device(BOB)
    alice.identity = bob.identity = "shared-identity"
    alice.sync([alice.op("items", "insert", ["itmA1"], "tx1", values=[item("itmA1")])])
    answer = bob.sync([bob.op("items", "insert", ["itmB1"], "tx1",
                              values=[item("itmB1", owner=BOB)])])
    assert rejected(answer) == []
    assert stored(app, bob, "items", "itmB1") is not None, "not skipped as alice's resend"


def test_nobody_grants_more_than_they_hold(device):
    alice, bob = device(ALICE), device(BOB)
    share(alice, permissions={"add": ["members", "items"]})
    accept(bob)
    escalate = member("mmbBob2", owner=BOB, userId=BOB, permissions={"manage": "*"})
    answer = bob.sync([bob.op("members", "insert", ["mmbBob2"], "up", values=[escalate])])
    assert rejected(answer) == ["up"]
    by_role = member("mmbBob3", owner=BOB, userId=BOB, roles=["boss"])
    alice.sync([alice.op("roles", "insert", [tson.dumps([REALM, "boss"])], "role", values=[
        {"realmId": REALM, "name": "boss", "owner": ALICE, "permissions": {"manage": "*"}}])])
    answer = bob.sync([bob.op("members", "insert", ["mmbBob3"], "role", values=[by_role])])
    assert rejected(answer) == ["role"], "a role counts with its permissions"
    same = member("mmbCarol", owner=BOB, email=CAROL, permissions={"add": ["items"]})
    answer = bob.sync([bob.op("members", "insert", ["mmbCarol"], "ok", values=[same])])
    assert rejected(answer) == [], "granting what one holds is fine"
    answer = bob.sync([bob.op("members", "update", ["mmbCarol"], "more",
                              changeSpecs=[{"permissions": {"manage": ["items"]}}])])
    assert rejected(answer) == ["more"]


def test_a_forged_last_pull_reveals_no_member_ids(device):
    alice, bob, carol = device(ALICE), device(BOB), device(CAROL)
    share(alice)
    alice.sync([alice.op("members", "insert", ["mmbCarol"], "c",
                         values=[member("mmbCarol", email=CAROL, invite=True)])])
    accept(carol)
    bob.sync()
    assert bob.last_pull["inviteRealms"] == [REALM]
    for revision in ("1:0", bob.last_pull["serverRevision"]):
        bob.last_pull = {"serverRevision": revision, "realms": [REALM, BOB, "rlm-public"],
                         "inviteRealms": []}
        answer = bob.sync()
        keys = {key for entry in answer["changes"] if entry["table"] == "members"
                for mut in entry["muts"] for key in mut["keys"]}
        assert keys <= {"mmbBob"}, f"member ids leaked: {keys}"
