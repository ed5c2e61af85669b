"""Where-clause criteria (spec §4.5): key ranges and index key extraction.

Non-heuristic cases were checked against fake-indexeddb with the same
objects, indexes and ranges.
"""

import math

import pytest

from dxc.protocol.criteria import ANY, EQUAL, NEVER, RANGE, Criteria, KeyRange
from dxc.tson import UNDEFINED, Binary, Date

# Wire forms, as dxc.tson decodes them.
ANY_WIRE = {"type": 3, "lower": -math.inf, "lowerOpen": False, "upper": [[]], "upperOpen": False}
NEVER_WIRE = {
    "type": 4,
    "lower": -math.inf,
    "lowerOpen": True,
    "upper": -math.inf,
    "upperOpen": True,
}


def rng(lower=UNDEFINED, upper=UNDEFINED, lower_open=UNDEFINED, upper_open=UNDEFINED):
    return KeyRange.from_wire(
        {
            "type": 2,
            "lower": lower,
            "upper": upper,
            "lowerOpen": lower_open,
            "upperOpen": upper_open,
        }
    )


def eq(value):
    return KeyRange.from_wire({"type": 1, "lower": value, "upper": value})


def crit(index, key_range):
    return Criteria(index, key_range)


# --- KeyRange.from_wire ----------------------------------------------------------


def test_from_wire_equal():
    assert eq("a") == KeyRange(EQUAL, "a", "a", False, False)


def test_from_wire_range_defaults_are_unbounded_and_closed():
    assert KeyRange.from_wire({"type": 2, "lower": 1}) == KeyRange(RANGE, 1, UNDEFINED)
    assert rng(1, 2) == KeyRange(RANGE, 1, 2, False, False)
    assert KeyRange.from_wire(
        {"type": 2, "lower": 1, "upper": 2, "lowerOpen": None, "upperOpen": True}
    ) == KeyRange(RANGE, 1, 2, False, True)


def test_from_wire_any_and_never():
    assert KeyRange.from_wire(ANY_WIRE).type == ANY
    assert KeyRange.from_wire(NEVER_WIRE).type == NEVER


@pytest.mark.parametrize(
    "wire",
    [
        None,
        [],
        "range",
        {},
        {"type": 5, "lower": 1},
        {"type": "2", "lower": 1},
        {"type": True, "lower": 1},
        {"type": 1.0, "lower": 1},
        {"type": 1},  # Equal without a key
        {"type": 1, "lower": None, "upper": None},
        {"type": 1, "lower": True, "upper": True},
        {"type": 2, "lower": None},
        {"type": 2, "upper": {}},
        {"type": 2, "lower": math.nan},
        {"type": 2, "lower": [1, None]},
        {"type": 2, "lower": 1, "lowerOpen": "yes"},
        {"type": 2, "lower": 1, "upperOpen": 1},
    ],
)
def test_from_wire_rejects_malformed_ranges(wire):
    with pytest.raises(ValueError):
        KeyRange.from_wire(wire)


# --- KeyRange.contains -----------------------------------------------------------


@pytest.mark.parametrize(
    ("lower_open", "upper_open", "inside"),
    [
        (False, False, {2, 3, 5}),
        (True, False, {3, 5}),
        (False, True, {2, 3}),
        (True, True, {3}),
        (UNDEFINED, UNDEFINED, {2, 3, 5}),
    ],
)
def test_range_open_and_closed_bounds(lower_open, upper_open, inside):
    key_range = rng(2, 5, lower_open, upper_open)
    for key in (1, 1.999, 2, 3, 5, 5.001, 6):
        assert key_range.contains(key) == (key in inside), key
    assert not key_range.contains("3")  # strings sort above every number


def test_unbounded_sides():
    above = rng(lower="m", lower_open=True)
    assert [above.contains(k) for k in ("m", "n", [], Binary("Uint8Array", b""), 99)] == [
        False,
        True,
        True,
        True,
        False,
    ]
    below = rng(upper=Date("2024-01-01T00:00:00.000Z"))
    assert below.contains(-math.inf)
    assert below.contains(Date("2024-01-01T00:00:00.000Z"))
    assert not below.contains(Date("2024-01-01T00:00:00.001Z"))
    assert not below.contains("a")
    everything = rng()
    assert everything.contains(-math.inf) and everything.contains([[[]]])


def test_equal():
    key_range = eq("a")
    assert key_range.contains("a")
    assert not key_range.contains("b")
    assert not key_range.contains(["a"])
    assert eq(1).contains(1.0)
    assert eq(["rlm", "x"]).contains(["rlm", "x"])


def test_any_contains_every_valid_key_and_nothing_else():
    any_range = KeyRange.from_wire(ANY_WIRE)
    for key in (-math.inf, 0, "", "\uffff", [], [[]], [[[]]], Binary("ArrayBuffer", b"")):
        assert any_range.contains(key)
    for value in (None, True, {}, UNDEFINED, math.nan, [None], Date("NaN")):
        assert not any_range.contains(value)


def test_never_contains_nothing():
    never = KeyRange.from_wire(NEVER_WIRE)
    assert not any(never.contains(k) for k in (-math.inf, 0, "a", [[]]))


def test_starts_with_range_uses_utf16_order():
    # where('path').startsWith('foo/') arrives as ["foo/", "foo/\uffff"], both closed.
    starts = rng("foo/", "foo/\uffff", False, False)
    assert starts.contains("foo/")
    assert starts.contains("foo/bar")
    assert starts.contains("foo/\U0001f600")  # D83D DE00 < FFFF, though U+1F600 > U+FFFF
    assert not starts.contains("foo")
    assert not starts.contains("foo0")
    assert not starts.contains("foo/\uffff\uffff")


def test_lower_above_upper_is_empty():
    assert not rng(5, 2).contains(3)


# --- Criteria.from_wire ---------------------------------------------------------


@pytest.mark.parametrize("wire_index", [None, UNDEFINED, "", "missing"])
def test_primary_key_criteria(wire_index):
    wire = (
        {"range": ANY_WIRE} if wire_index == "missing" else {"index": wire_index, "range": ANY_WIRE}
    )
    assert Criteria.from_wire(wire).index is None


@pytest.mark.parametrize(
    "wire",
    [
        None,
        [],
        {"index": "name"},
        {"index": 5, "range": ANY_WIRE},
        {"index": "[a+b", "range": ANY_WIRE},
        {"index": "[]", "range": ANY_WIRE},
        {"index": "name", "range": {"type": 9}},
    ],
)
def test_criteria_from_wire_rejects_malformed(wire):
    with pytest.raises(ValueError):
        Criteria.from_wire(wire)


def test_criteria_from_wire():
    criteria = Criteria.from_wire({"index": "address.city", "range": {"type": 1, "lower": "Oslo"}})
    assert criteria == Criteria("address.city", eq("Oslo"))


# --- Criteria.matches ------------------------------------------------------------


def test_primary_key_uses_the_decoded_key():
    criteria = crit(None, rng("k1", "k3"))
    assert criteria.matches({"id": "zzz"}, "k2")
    assert not criteria.matches({"id": "k2"}, "k4")
    compound = crit(None, eq(["rlm-public", "admin"]))
    assert compound.matches({"realmId": "rlm-public", "name": "admin"}, ["rlm-public", "admin"])
    assert not compound.matches({}, '["rlm-public","admin"]')  # undecoded wire key


def test_simple_index():
    criteria = crit("name", rng("b", "d"))
    assert criteria.matches({"name": "c"}, "k")
    assert not criteria.matches({"name": "e"}, "k")
    assert not criteria.matches({"other": "c"}, "k")


def test_dotted_index():
    criteria = crit("address.city", eq("Oslo"))
    assert criteria.matches({"address": {"city": "Oslo"}}, "k")
    assert not criteria.matches({"address": {"city": "Bergen"}}, "k")
    assert not criteria.matches({"address": None}, "k")
    assert not criteria.matches({"address": "Oslo"}, "k")
    assert not criteria.matches({}, "k")
    assert crit("items.0.title", eq("x")).matches({"items": [{"title": "x"}]}, "k")


@pytest.mark.parametrize("value", [None, True, False, {}, {"a": 1}, UNDEFINED, math.nan])
def test_values_that_are_not_keys_never_match_even_any(value):
    any_range = KeyRange.from_wire(ANY_WIRE)
    assert not crit("name", any_range).matches({"name": value}, "k")
    assert not crit("name", any_range).matches({}, "k")
    assert crit("name", any_range).matches({"name": 0}, "k")


def test_compound_index():
    criteria = crit("[firstName+lastName]", eq(["Ada", "Lovelace"]))
    assert criteria.matches({"firstName": "Ada", "lastName": "Lovelace"}, "k")
    assert not criteria.matches({"firstName": "Ada", "lastName": "Byron"}, "k")
    # Dexie's between([x, minKey], [x, maxKey]): every "Ada".
    ada = crit("[firstName+lastName]", rng(["Ada", -math.inf], ["Ada", [[]]]))
    assert ada.matches({"firstName": "Ada", "lastName": "Byron"}, "k")
    assert ada.matches({"firstName": "Ada", "lastName": 5}, "k")
    assert not ada.matches({"firstName": "Bob", "lastName": "Byron"}, "k")


def test_compound_index_skips_objects_with_a_component_that_is_not_a_key():
    any_range = KeyRange.from_wire(ANY_WIRE)
    criteria = crit("[firstName+lastName]", any_range)
    assert criteria.matches({"firstName": "Ada", "lastName": "L"}, "k")
    assert not criteria.matches({"firstName": "Ada"}, "k")
    assert not criteria.matches({"firstName": "Ada", "lastName": None}, "k")
    assert not criteria.matches({"firstName": "Ada", "lastName": True}, "k")


def test_compound_index_with_dotted_components():
    criteria = crit("[a.b+c]", eq([1, "x"]))
    assert criteria.matches({"a": {"b": 1}, "c": "x"}, "k")


def test_compound_index_of_one_component_is_an_array_key():
    assert crit("[name]", eq(["x"])).matches({"name": "x"}, "k")
    assert not crit("[name]", eq("x")).matches({"name": "x"}, "k")


def test_multi_entry_heuristic_for_array_values_and_non_array_bounds():
    above_m = crit("tags", rng("m"))
    assert above_m.matches({"tags": ["a", "z"]}, "k")
    assert not above_m.matches({"tags": ["a", "b"]}, "k")
    assert above_m.matches({"tags": ["a", {}, None, "z"]}, "k")  # non-keys skipped
    assert not above_m.matches({"tags": [{}, None]}, "k")
    assert crit("tags", eq("a")).matches({"tags": ["b", "a"]}, "k")
    assert not crit("tags", eq("a")).matches({"tags": [["a"]]}, "k")
    # An array bound means an array key: then the value is compared whole, so a
    # multiEntry index holding arrays as elements is not found that way (limit).
    assert crit("tags", eq(["a"])).matches({"tags": ["a"]}, "k")
    assert not crit("tags", eq(["a"])).matches({"tags": [["a"]]}, "k")


def test_multi_entry_with_max_key_upper_bound():
    # between("m", Dexie.maxKey): [[]] is not an array bound for the heuristic.
    criteria = crit("tags", rng("m", [[]]))
    assert criteria.matches({"tags": ["z"]}, "k")
    assert not criteria.matches({"tags": ["a"]}, "k")


def test_multi_entry_any_needs_an_element_that_is_a_key():
    any_range = KeyRange.from_wire(ANY_WIRE)
    criteria = crit("tags", any_range)
    assert criteria.matches({"tags": ["x"]}, "k")
    assert criteria.matches({"tags": [{}, 1]}, "k")
    assert not criteria.matches({"tags": []}, "k")  # an empty multiEntry array has no entries
    assert not criteria.matches({"tags": [None, {}]}, "k")


def test_array_bounds_compare_array_values_as_whole_keys():
    criteria = crit("pair", rng([1, "a"], [1, "z"]))
    assert criteria.matches({"pair": [1, "m"]}, "k")
    assert not criteria.matches({"pair": [2, "m"]}, "k")
    assert not criteria.matches({"pair": [1, None]}, "k")


def test_never_matches_nothing():
    never = KeyRange.from_wire(NEVER_WIRE)
    assert not crit(None, never).matches({"id": "a"}, "a")
    assert not crit("tags", never).matches({"tags": ["a"]}, "k")


def test_length_of_an_array_is_a_key_path():
    assert crit("tags.length", eq(2)).matches({"tags": ["a", "b"]}, "k")


def test_dates_in_criteria():
    criteria = crit("at", rng(Date("2024-01-01T00:00:00.000Z"), lower_open=True))
    assert criteria.matches({"at": Date("2024-06-01T00:00:00.000Z")}, "k")
    assert not criteria.matches({"at": Date("2024-01-01T00:00:00.000Z")}, "k")
    assert not criteria.matches({"at": Date("NaN")}, "k")
    assert criteria.matches({"at": "2023"}, "k")  # strings sort above dates
