"""Permission sets and member states, without a database."""

from __future__ import annotations

from dxc.access import members, permissions
from dxc.access.permissions import FULL, NONE, Permissions, union
from dxc.access.principal import Principal
from dxc.tson import Date


def test_union_keeps_tables_found_only_in_later_sets():
    merged = union([
        Permissions.parse({"update": {"items": ["done"]}}),
        Permissions.parse({"update": {"notes": ["text"], "items": ["title"]}, "add": ["notes"]}),
    ])
    assert merged.can_update("items", {"done", "title"})
    assert merged.can_update("notes", {"text"}), "the client's mergePermissions drops this table"
    assert merged.can_add("notes") and not merged.can_add("items")


def test_star_does_not_cover_reserved_properties_unless_listed():
    star = Permissions.parse({"update": {"items": "*"}})
    assert star.can_update("items", {"title", "done"})
    assert not star.can_update("items", {"realmId"}) and not star.can_update("items", {"owner"})
    listed = Permissions.parse({"update": {"items": ["*", "realmId"]}})
    assert listed.can_update("items", {"title", "realmId"})
    assert not listed.can_update("items", {"owner"})
    assert FULL.can_update("items", {"owner"}) and FULL.can_delete("items")


def test_malformed_sets_grant_nothing_and_survive_the_index():
    for value in (None, "x", {"add": "items"}, {"update": ["items"]}, {"manage": 5}):
        parsed = Permissions.parse(value)
        assert not parsed.can_add("items") and not parsed.can_update("items", {"a"})
    text = permissions.dumps(Permissions.parse({"add": ["b", "a"], "update": "*"}))
    assert permissions.loads(text) == Permissions.parse({"add": ["a", "b"], "update": "*"})
    assert permissions.loads(None) == NONE


def test_member_states_and_who_a_row_stands_for():
    early, late = Date("2024-01-01T00:00:00.000Z"), Date("2024-02-01T00:00:00.000Z")
    assert members.state_of({}) == members.PENDING
    assert members.state_of({"accepted": early}) == members.ACTIVE
    assert members.state_of({"accepted": early, "rejected": late}) == members.REJECTED
    assert members.state_of({"accepted": late, "rejected": early}) == members.ACTIVE
    bob = Principal("u-bob", email=" Bob@X.test")
    assert members.stands_for({"email": "bob@x.test"}, bob)
    assert not members.stands_for({"email": "bob@x.test", "userId": "u-other"}, bob)
    assert members.stands_for({"userId": "u-bob"}, bob)
