"""Change specs, key paths and PropModifications (spec §4.6).

Every expected value was produced by Dexie 4.4.7 itself under Node 20
(``getByKeyPath``, ``setByKeyPath``, ``PropModification.execute`` and the
``applyUpdateSpec`` loop), with TZ=UTC.
"""

import math

import pytest

from dxc.protocol.changes import (
    MAX_ARRAY_GROWTH,
    ChangeSpecError,
    apply_change_spec,
    apply_prop_modification,
    get_by_key_path,
    js_string,
    js_to_number,
    set_by_key_path,
)
from dxc.tson import UNDEFINED, Binary, Blob, Date, PropModification, TMap, TSet


def add(arg):
    return PropModification("add", arg)


def remove(arg):
    return PropModification("remove", arg)


def replace_prefix(*arg):
    return PropModification("replacePrefix", list(arg))


def same(a, b):
    """Equality that also holds for NaN and tells int 1 from True."""
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    return a == b and (type(a) is type(b) or {type(a), type(b)} <= {int, float})


# --- get_by_key_path ------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "path", "expected"),
    [
        ({"a": {"b": 1}}, "a.b", 1),
        ({"a.b": 2, "a": {"b": 1}}, "a.b", 2),  # a literal dotted property wins
        ({"items": [1, 2]}, "items.1", 2),
        ({"items": [1, 2]}, "items.length", 2),
        ({"n": "hé\U0001f600"}, "n.length", 4),  # UTF-16 code units
        ({"n": "hé\U0001f600"}, "n.2", "\ud83d"),
        ({"items": [1, 2]}, "items.01", UNDEFINED),
        ({"items": [1, 2]}, "items.-1", UNDEFINED),
        ({"items": [1, 2]}, "items.5", UNDEFINED),
        ({"a": None}, "a.b", UNDEFINED),
        ({"a": 5}, "a.b", UNDEFINED),
        ({"a": {"b": None}}, "a.b", None),
        ({}, "missing", UNDEFINED),
        ({"contents": [{"items": ["x"]}]}, "contents.0.items.0", "x"),
        ({"bin": Binary("Uint8Array", b"\x01")}, "bin.0", UNDEFINED),  # typed arrays are opaque
    ],
)
def test_get_by_key_path(obj, path, expected):
    assert get_by_key_path(obj, path) == expected


def test_get_by_empty_key_path_is_the_object():
    obj = {"a": 1}
    assert get_by_key_path(obj, "") is obj


# --- set_by_key_path ------------------------------------------------------------


def set_(obj, path, value):
    set_by_key_path(obj, path, value)
    return obj


@pytest.mark.parametrize(
    ("obj", "path", "value", "expected"),
    [
        ({}, "a.b.c", 1, {"a": {"b": {"c": 1}}}),
        ({"a": {"x": 1}}, "a.b", 1, {"a": {"x": 1, "b": 1}}),
        # Falsy intermediate values are replaced by objects.
        ({"a": 0}, "a.b", 1, {"a": {"b": 1}}),
        ({"a": ""}, "a.b", 1, {"a": {"b": 1}}),
        ({"a": None}, "a.b", 1, {"a": {"b": 1}}),
        ({"a": False}, "a.b", 1, {"a": {"b": 1}}),
        # Truthy primitives are left alone (Dexie: Object.isFrozen(primitive)).
        ({"a": 5}, "a.b", 1, {"a": 5}),
        ({"a": "str"}, "a.b", 1, {"a": "str"}),
        # Deleting.
        ({"a": {"b": 1, "c": 2}}, "a.b", UNDEFINED, {"a": {"c": 2}}),
        ({}, "x.y.z", UNDEFINED, {}),  # no intermediate objects for a deletion
        ({"a": 1}, "a", UNDEFINED, {}),
        # Arrays: numeric segments index them; deleting splices.
        ({"l": [1, 2, 3]}, "l.1", UNDEFINED, {"l": [1, 3]}),
        ({"l": [1, 2, 3]}, "l.-1", UNDEFINED, {"l": [1, 2]}),  # splice(-1, 1)
        ({"l": [1, 2, 3]}, "l.x", UNDEFINED, {"l": [1, 2, 3]}),
        ({"l": [1, 2, 3]}, "l.1abc", UNDEFINED, {"l": [2, 3]}),  # splice(NaN → 0, 1)
        ({"l": [1, 2, 3]}, "l. 2", UNDEFINED, {"l": [1, 2]}),
        ({"l": [1, 2, 3]}, "l.01", UNDEFINED, {"l": [1, 3]}),
        ({"l": [1, 2]}, "l.1.", UNDEFINED, {"l": [1]}),  # a trailing dot counts as none
        ({"l": [1, 2]}, "l.5", UNDEFINED, {"l": [1, 2]}),
        (
            {"contents": [{"items": [1]}, {"items": []}]},
            "contents.0.items",
            [9],
            {"contents": [{"items": [9]}, {"items": []}]},
        ),  # issue #2103
        ({"l": [{"a": 1}]}, "l.0.b", 2, {"l": [{"a": 1, "b": 2}]}),
        ({"l": []}, "l.0.b", 2, {"l": [{"b": 2}]}),
        ({"l": [1]}, "l.1", 2, {"l": [1, 2]}),
        ({"l": [1]}, "l.3", 4, {"l": [1, None, None, 4]}),  # JS holes become null
        ({"l": [1, 2, 3]}, "l.length", 1, {"l": [1]}),
        ({"l": [1, 2]}, "l.x", 5, {"l": [1, 2]}),  # a named property of an array is not stored
        ({"a": 1}, "b.", 2, {"a": 1, "b": 2}),
        ({"a": 1}, "", 2, {"a": 1, "": 2}),
    ],
)
def test_set_by_key_path(obj, path, value, expected):
    assert set_(obj, path, value) == expected


@pytest.mark.parametrize("obj", [None, 0, "", False, UNDEFINED])
def test_set_on_a_falsy_object_does_nothing(obj):
    set_by_key_path(obj, "a", 1)


def test_set_refuses_to_grow_an_array_without_bound():
    obj = {"l": []}
    set_by_key_path(obj, f"l.{MAX_ARRAY_GROWTH - 1}", 1)
    assert len(obj["l"]) == MAX_ARRAY_GROWTH
    with pytest.raises(ChangeSpecError):
        set_by_key_path({"l": []}, "l.4000000000", 1)
    with pytest.raises(ChangeSpecError):
        set_by_key_path({"l": []}, "l.length", 4_000_000_000)


def test_invalid_array_length_does_nothing():
    # JS throws (RangeError / cannot delete length); the server ignores it.
    for spec_value in (1.5, -1, "abc", UNDEFINED):
        assert set_({"l": [1, 2]}, "l.length", spec_value) == {"l": [1, 2]}


# --- PropModification -------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "pm", "expected"),
    [
        # add number: (Number(old) || 0) + n
        (UNDEFINED, add(5), 5),
        ("5", add(5), 10),
        ("abc", add(5), 5),
        (None, add(5), 5),
        (True, add(5), 6),
        ([3], add(5), 8),
        ({}, add(1), 1),
        (math.nan, add(5), 5),
        (" 0x10 ", add(5), 21),
        (9007199254740992, add(1), 9007199254740992),  # doubles round
        (0.2, add(0.1), 0.30000000000000004),
        (Date("1970-01-01T00:00:01.000Z"), add(1), 1001),
        (1, add(math.inf), math.inf),
        # add array: concatenation (no de-duplication), then String() sort
        ([], add([10, 9, 1]), [1, 10, 9]),
        (["c", "a", "b"], add(["b"]), ["a", "b", "b", "c"]),
        ("x", add([2]), [2]),
        (UNDEFINED, add(["x"]), ["x"]),
        (["\U0001f600"], add(["\uffff"]), ["\U0001f600", "\uffff"]),  # UTF-16 order
        ([], add([True, None, 1, "a", [2, 3], {}]), [1, [2, 3], {}, "a", None, True]),
        ([3, UNDEFINED, 1], add([]), [1, 3, UNDEFINED]),  # undefined sorts last
        ([1e21, 1e-7, -1, -0.5, 0], add([]), [-0.5, -1, 0, 1e21, 1e-7]),
        # remove number: Number(old) - n, no "|| 0"
        (10, remove(3), 7),
        ("10", remove(3), 7),
        (UNDEFINED, remove(3), math.nan),
        (None, remove(3), -3),
        ("abc", remove(3), math.nan),
        ([], remove(3), -3),
        # remove array: SameValueZero filter, then sort
        ([1, "1", "a", math.nan, 2, {}], remove([1, "a", math.nan]), ["1", 2, {}]),
        ([1, True], remove([True]), [1]),
        ([-0.0, 0], remove([0]), []),
        ([{}], remove([{}]), [{}]),  # objects are never the same object
        ("x", remove(["x"]), []),
        ([None, UNDEFINED, "null"], remove([None]), ["null", UNDEFINED]),
        # replacePrefix
        ("foo/x", replace_prefix("foo/", "bar/"), "bar/x"),
        ("xfoo/", replace_prefix("foo/", "bar/"), "xfoo/"),
        (5, replace_prefix("5", "x"), 5),
        (UNDEFINED, replace_prefix("a", "b"), UNDEFINED),
        ("abc", replace_prefix("", "x"), "abc"),  # an empty prefix is falsy
        ("1abc", replace_prefix(1, "y"), "y1abc"),  # (1).length is undefined
        ("abc", replace_prefix(["ab"], "Z"), "Zbc"),  # ["ab"].length is 1
        ("abc", replace_prefix("a"), "undefinedbc"),
        ("\U0001f600y", replace_prefix("\U0001f600", "x"), "xy"),
        ("\U0001f600y", replace_prefix("\ud83d", "x"), "x\ude00y"),
        ("ab", replace_prefix("a", None), "nullb"),
        ("ab", replace_prefix("a", 5), "5b"),
        # An undefined argument is no operation at all.
        (1, add(UNDEFINED), 1),
        ("ab", PropModification("replacePrefix", UNDEFINED), "ab"),
        ("ab", PropModification("replacePrefix", "ab"), "ab"),  # not an array: unchanged
    ],
)
def test_prop_modification(old, pm, expected):
    result = apply_prop_modification(old, pm)
    assert same(result, expected), result


@pytest.mark.parametrize("term", ["5", True, None, {}])
@pytest.mark.parametrize("op", ["add", "remove"])
def test_prop_modification_invalid_term(op, term):
    with pytest.raises(ChangeSpecError):
        apply_prop_modification(1, PropModification(op, term))


def test_prop_modification_does_not_touch_its_input():
    old = ["b", "a"]
    pm = add(["c"])
    assert apply_prop_modification(old, pm) == ["a", "b", "c"]
    assert old == ["b", "a"]
    assert pm.arg == ["c"]


# --- JS coercions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (UNDEFINED, math.nan),
        (None, 0),
        (True, 1),
        (False, 0),
        ("", 0),
        ("  ", 0),
        (" 12 ", 12),
        ("\u00a012\ufeff", 12),
        ("\u200b1", math.nan),  # U+200B is not JS whitespace
        ("\x1c1", math.nan),  # nor is U+001C (Python's strip would take it)
        ("1e3", 1000),
        ("-1.5e-3", -0.0015),
        (".5", 0.5),
        ("5.", 5),
        (".", math.nan),
        ("0x1F", 31),
        ("-0x1F", math.nan),
        ("0o17", 15),
        ("0b101", 5),
        ("Infinity", math.inf),
        ("-Infinity", -math.inf),
        ("infinity", math.nan),
        ("inf", math.nan),
        ("1_000", math.nan),
        ("١٢", math.nan),  # only ASCII digits
        ("1e400", math.inf),
        ([], 0),
        ([5], 5),
        (["7"], 7),
        ([1, 2], math.nan),
        ([[3]], 3),
        ([None], 0),
        ({}, math.nan),
        (Date("1970-01-01T00:00:01.000Z"), 1000),
        (Date("NaN"), math.nan),
        (Binary("Uint8Array", b"\x05"), 5),
        (Binary("ArrayBuffer", b"\x05"), math.nan),
    ],
)
def test_js_to_number(value, expected):
    assert same(js_to_number(value), expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (UNDEFINED, "undefined"),
        (None, "null"),
        (True, "true"),
        (1.0, "1"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (math.nan, "NaN"),
        ("s", "s"),
        ([1, None, UNDEFINED, [2, "a"], True], "1,,,2,a,true"),
        ({}, "[object Object]"),
        (
            Date("2024-01-02T03:04:05.006Z"),
            "Tue Jan 02 2024 03:04:05 GMT+0000 (Coordinated Universal Time)",
        ),
        (
            Date("-000001-06-01T00:00:00.000Z"),
            "Tue Jun 01 -0001 00:00:00 GMT+0000 (Coordinated Universal Time)",
        ),
        (Date("NaN"), "Invalid Date"),
        (Binary("Int16Array", b"\xff\xff\x02\x00"), "-1,2"),
        (Binary("Float32Array", b"\xcd\xcc\xcc\x3d"), "0.10000000149011612"),
        (Binary("BigUint64Array", b"\xff" * 8), "18446744073709551615"),
        (Binary("ArrayBuffer", b""), "[object ArrayBuffer]"),
        (Binary("DataView", b""), "[object DataView]"),
        (Blob(b"", "text/plain"), "[object Blob]"),
        (Blob(b"", "", "a.txt", "2024-01-01T00:00:00.000Z"), "[object File]"),
        (TMap([]), "[object Map]"),
        (TSet([]), "[object Set]"),
    ],
)
def test_js_string(value, expected):
    assert js_string(value) == expected


def test_dates_sort_by_their_string_form():
    # Dexie's sort() compares String(date): the weekday comes first.
    thursday = Date("1970-01-01T00:00:00.000Z")
    friday = Date("1970-01-02T00:00:00.000Z")
    assert apply_prop_modification([thursday], add([friday])) == [friday, thursday]


# --- apply_change_spec ------------------------------------------------------------


def test_apply_change_spec_returns_a_new_object():
    obj = {"a": {"b": 1}, "l": [1, 2]}
    result = apply_change_spec(obj, {"a.b": 2, "l.0": UNDEFINED})
    assert result == {"a": {"b": 2}, "l": [2]}
    assert obj == {"a": {"b": 1}, "l": [1, 2]}


def test_apply_change_spec_copies_spec_values():
    spec = {"meta": {"tags": ["a"]}}
    first = apply_change_spec({}, spec)
    second = apply_change_spec({}, spec)
    first["meta"]["tags"].append("b")
    assert second == {"meta": {"tags": ["a"]}}
    assert spec == {"meta": {"tags": ["a"]}}


def test_apply_change_spec_with_prop_modifications():
    obj = {"n": 1, "tags": ["b"], "p": "foo/x", "s": {"c": 1}}
    spec = {
        "n": add(2),
        "tags": add(["a"]),
        "p": replace_prefix("foo/", "bar/"),
        "s.c": remove(1),
        "s.d": add(1),
        "new.deep": add(["x"]),
    }
    assert apply_change_spec(obj, spec) == {
        "n": 3,
        "tags": ["a", "b"],
        "p": "bar/x",
        "s": {"c": 0, "d": 1},
        "new": {"deep": ["x"]},
    }


def test_apply_change_spec_in_js_key_order():
    # Object.keys puts array-index names first: "0", "1", then "2.a", "b".
    spec = {"2.a": 1, "b": 2, "0": 5, "1": UNDEFINED}
    assert apply_change_spec({}, spec) == {"0": 5, "2": {"a": 1}, "b": 2}
    # "0" is deleted before "0.x" recreates it.
    assert apply_change_spec({"0": {"y": 1}}, {"0.x": 1, "0": UNDEFINED}) == {"0": {"x": 1}}


def test_apply_change_spec_later_paths_see_earlier_ones():
    assert apply_change_spec(
        {"a": 1, "b": {"c": 2}}, {"b": {"c": 3}, "b.c": 4, "a": UNDEFINED}
    ) == {"b": {"c": 4}}


def test_deleting_a_missing_index_does_not_splice():
    # getByKeyPath(list, "-1") is undefined === undefined, so Dexie skips the splice.
    assert apply_change_spec({"l": [1, 2, 3]}, {"l.-1": UNDEFINED, "l.1": UNDEFINED}) == {
        "l": [1, 3]
    }


def test_issue_2103_numeric_segment_in_an_array():
    obj = {"contents": [{"items": [1]}, {"items": [2]}]}
    assert apply_change_spec(obj, {"contents.1.items": add([0])}) == {
        "contents": [{"items": [1]}, {"items": [0, 2]}]
    }


def test_apply_change_spec_keeps_other_values_and_types():
    obj = {
        "when": Date("2024-01-02T03:04:05.006Z"),
        "bin": Binary("Uint8Array", b"\x01"),
        "map": TMap([("k", ["v"])]),
    }
    result = apply_change_spec(obj, {"x": 1})
    assert result == {**obj, "x": 1}
    result["map"].items[0][1].append("w")
    assert obj["map"].items == [("k", ["v"])]


def test_empty_spec():
    assert apply_change_spec({"a": 1}, {}) == {"a": 1}
    assert apply_change_spec({"a": 1}, None) == {"a": 1}


def test_plain_propmod_objects_from_indexeddb_clones_are_executed():
    """What the real client sends: its logged mutation lost the class in IndexedDB."""
    obj = {"n": 1, "tags": ["b"], "path": "docs/a"}
    spec = {
        "n": {"@@propmod": {"add": 2}},
        "tags": {"@@propmod": {"add": ["a"]}},
        "path": {"@@propmod": {"replacePrefix": ["docs/", "files/"]}},
        "other": {"@@propmod": {"unknown": 1}},
    }
    result = apply_change_spec(obj, spec)
    assert result["n"] == 3
    assert result["tags"] == ["a", "b"]
    assert result["path"] == "files/a"
    assert result["other"] == {"@@propmod": {"unknown": 1}}
