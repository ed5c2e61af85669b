"""/sync end to end: the real dexie-cloud-addon (Node, fake-indexeddb) against the real server.

Each test runs one scenario of ``node/scenarios`` (see its header for what it does) and checks
what the devices ended up holding. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from dxc.manage.importer import import_document
from dxc.storage import schema
from tests.e2e.runner import ScenarioError, run_scenario

USER = "alice@demo.local"
OTHER_USER = "bob@demo.local"
PUBLIC_ITEMS = {"itmPublicOne": {"title": "public one"}, "itmPublicTwo": {"title": "public two"}}

Items = list[dict[str, Any]]


@pytest.fixture
def db_url(server) -> str:
    return server.create_database(demo_users=(USER, OTHER_USER))


def scenario(server, name: str, **args: Any) -> dict[str, Any]:
    """Run a scenario against ``server``; a failure also shows the server's log."""
    try:
        return run_scenario(name, **args)
    except ScenarioError as error:
        raise ScenarioError(f"{error}\n--- server log (tail) ---\n{server.log()[-6000:]}") from None


def db_id_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def add_public_items(server, url: str) -> None:
    import_document(
        server.services, db_id_of(url), {"data": {"rlm-public": {"items": PUBLIC_ITEMS}}}
    )


def by_title(items: Items) -> dict[str, Items]:
    found: dict[str, Items] = {}
    for item in items:
        found.setdefault(item.get("title"), []).append(item)
    return found


def the(items: Items, title: str) -> dict[str, Any]:
    """The one item titled ``title``."""
    matches = by_title(items).get(title, [])
    assert len(matches) == 1, f"expected one item titled {title!r}, found {len(matches)}"
    return matches[0]


def titles(items: Items) -> list[str]:
    return sorted(item.get("title") for item in items)


def assert_same(a: Items, b: Items, what: str = "devices A and B") -> None:
    assert a == b, f"{what} differ:\nA: {a}\nB: {b}"


def assert_clean_log(server) -> None:
    log = server.log()
    assert "Traceback" not in log, f"the server logged a traceback:\n{log[-6000:]}"


def stored_texts(server, url: str) -> list[str]:
    """The stored (TSON) text of every live object of the database, as the server holds it."""
    db_id = db_id_of(url)
    objects = schema.objects
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        rows = connection.execute(
            select(objects.c.value).where(objects.c.db_id == db_id, objects.c.deleted.is_(False))
        )
        return [row.value for row in rows]


# --- every kind of write ---------------------------------------------------------------------


def _add(items: Items) -> None:
    assert titles(items) == ["one", "three", "two"]
    assert the(items, "one")["tags"] == ["a", "b", "c"]
    assert all(i["realmId"] == USER and i["owner"] == USER for i in items), items


def _put(items: Items) -> None:
    two = the(items, "two")
    assert {k: v for k, v in two.items() if k not in ("id", "realmId", "owner")} == {
        "title": "two",
        "n": 22,
    }, "put() must replace the whole object"
    assert the(items, "three")["n"] == 33
    assert the(items, "four")["n"] == 4


def _upsert(items: Items) -> None:
    three = the(items, "three")
    assert three["count"] == 12, "upsert(add(5)) and update(add(7)) must both count"
    assert three["meta"] == {"by": "upsert"}
    assert (three["n"], three["path"]) == (33, "src/main"), "upsert must keep other properties"
    assert the(items, "five")["n"] == 5


def _nested_update(items: Items) -> None:
    assert the(items, "one")["a"] == {"b": {"c": 1, "d": 2}}


def _modify_where(items: Items) -> None:
    twos = by_title(items)["two"]
    assert len(twos) == 2
    assert all(t.get("flag") is True for t in twos), twos


def _compound_index(items: Items) -> None:
    assert the(items, "seven").get("hit") is True
    assert the(items, "eight").get("hit") is True


def _delete_where(items: Items) -> None:
    assert "big" not in by_title(items)
    assert not [i for i in items if isinstance(i.get("n"), int | float) and i["n"] > 100]
    assert titles(items) == sorted(["one", "two", "two", "three", "four", "five", "seven", "eight"])


def _add_counter(items: Items) -> None:
    assert the(items, "one")["count"] == 2, "two concurrent add(1) must make 2"


def _remove_from_array(items: Items) -> None:
    assert the(items, "one")["tags"] == ["a", "c", "d"]


def _replace_prefix(items: Items) -> None:
    assert the(items, "one")["path"] == "files/readme"
    assert the(items, "six")["path"] == "files/new"
    assert the(items, "three")["path"] == "src/main"


MUTATION_STEPS: dict[str, Callable[[Items], None]] = {
    "add": _add,
    "put": _put,
    "upsert": _upsert,
    "nested-update": _nested_update,
    "modify-where": _modify_where,
    "compound-index": _compound_index,
    "delete-where": _delete_where,
    "add-counter": _add_counter,
    "remove-from-array": _remove_from_array,
    "replace-prefix": _replace_prefix,
}


def test_two_devices_converge_after_every_kind_of_write(server, db_url):
    result = scenario(server, "mutations", databaseUrl=db_url, user=USER)
    # The concurrent steps really were concurrent: each device only had its own change.
    assert result["local"]["counter"] == {"a": 1, "b": 1}
    assert result["local"]["tags"] == {"a": ["a", "c"], "b": ["a", "b", "c", "d"]}
    problems = []
    for name, check in MUTATION_STEPS.items():
        state = result["steps"][name]
        if state["a"] != state["b"]:
            problems.append(f"after {name}: the devices differ\nA: {state['a']}\nB: {state['b']}")
            continue
        try:
            check(state["a"])
        except AssertionError as error:
            problems.append(f"after {name}: {error}\nitems: {state['a']}")
    assert not problems, "\n\n".join(problems)
    assert_clean_log(server)


# --- values ----------------------------------------------------------------------------------


def test_values_of_every_tson_type_reach_the_other_device_unchanged(server, db_url):
    steps = scenario(server, "values", databaseUrl=db_url, user=USER)["steps"]
    problems = []
    for name, step in steps.items():
        if "error" in step:
            problems.append(f"{name}: {step['error']}")
        elif not (step["equalOnA"] and step["equalOnB"]):
            fields = set(step["fieldsDifferingOnA"]) | set(step["fieldsDifferingOnB"])
            problems.append(
                f"{name}: differing fields on A {step['fieldsDifferingOnA']}, "
                f"on B {step['fieldsDifferingOnB']}\n"
                + "\n".join(
                    f"  {f}: expected {step['expected'].get(f)!r}\n"
                    f"      A has {step['a'].get(f)!r}\n      B has {step['b'].get(f)!r}"
                    for f in sorted(fields)
                )
            )
    assert not problems, "\n\n".join(problems)
    assert_clean_log(server)


# --- offline, lost answers -------------------------------------------------------------------


def test_devices_editing_offline_converge_when_back_online(server, db_url):
    result = scenario(server, "offline", databaseUrl=db_url, user=USER)
    # While offline nothing got through: each device saw only its own edits.
    assert result["errors"]["a"] and result["errors"]["b"]
    assert titles(result["offline"]["a"]) == ["new by A", "x by A", "y"]
    assert titles(result["offline"]["b"]) == ["new by B", "x by B", "y", "z"]

    assert_same(result["a"], result["b"])
    items = result["a"]
    assert titles(items) == ["new by A", "new by B", "x by B", "y"], "z was deleted by A"
    x = the(items, "x by B")  # B pushed after A: B's title wins
    assert (x["n"], x["extra"]) == (10, "B"), "changes to different properties both survive"
    assert the(items, "y")["n"] == 20
    assert_clean_log(server)


def test_a_resent_request_is_not_applied_twice(server, db_url):
    result = scenario(server, "lost_response", databaseUrl=db_url, user=USER)
    assert result["lost"], "the fault was not injected: the scenario proves nothing"
    assert_same(result["a"], result["b"])
    items = by_title(result["b"])
    counts = [c.get("count") for c in items["counter"]]
    assert counts == [1], f"the counter is {counts}: add(1) must have been applied once"
    assert len(items["inserted once"]) == 1, "the insert was applied twice"
    assert_clean_log(server)


# --- access ----------------------------------------------------------------------------------


def test_a_refused_write_is_rolled_back_and_reaches_nobody(server, db_url):
    add_public_items(server, db_url)
    public_id = "itmPublicOne"
    result = scenario(
        server, "refused", databaseUrl=db_url, user=USER, otherUser=OTHER_USER, publicId=public_id
    )
    # The client accepted every write locally, so only the server can have refused them.
    assert titles(result["local"]) == sorted(
        [
            "allowed before",
            "allowed after",
            "refused: public",
            "refused: other user's realm",
            "refused: public update",
            "public two",
        ]
    )
    expected = ["allowed after", "allowed before", "public one", "public two"]
    assert titles(result["a"]) == expected, "refused writes must be rolled back on the device"
    assert_same(result["a"], result["sameUser"], "the user's two devices")
    assert the(result["a"], "public one")["id"] == public_id
    assert titles(result["otherUser"]) == ["public one", "public two"]
    leaked = [text for text in stored_texts(server, db_url) if "refused" in text]
    assert not leaked, f"the server stored refused writes: {leaked}"
    assert_clean_log(server)


def test_an_anonymous_client_sees_public_data_only(server, db_url):
    add_public_items(server, db_url)
    result = scenario(server, "anonymous", databaseUrl=db_url, user=USER)
    public = sorted(item["title"] for item in PUBLIC_ITEMS.values())
    assert result["anonymousUserId"] == "unauthorized"
    assert titles(result["anonymous"]) == public
    assert {item["id"] for item in result["anonymous"]} == set(PUBLIC_ITEMS)
    assert USER not in result["anonymousRealms"]
    assert titles(result["user"]) == sorted([*public, "private 1", "private 2"])
    assert_clean_log(server)
