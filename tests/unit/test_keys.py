"""IndexedDB key order and wire keys (spec §4.5, §4.7).

Expected values were checked against Node 20 (``JSON.stringify``, ``String``)
and Dexie's ``cmp`` / fake-indexeddb.
"""

import functools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dxc.protocol.keys import (
    compare_keys,
    decode_wire_key,
    encode_wire_key,
    is_valid_key,
    js_number_to_string,
    utf16,
)
from dxc.tson import UNDEFINED, Binary, Blob, Date, PropModification, TMap, TSet

# --- validity -------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        0,
        -1,
        1.5,
        -math.inf,
        math.inf,
        "",
        "a",
        "\ud800",
        Date("2024-01-02T03:04:05.006Z"),
        Binary("Uint8Array", b"\x01"),
        Binary("ArrayBuffer", b""),
        [],
        [[]],
        ["a", 1, [Date("1970-01-01T00:00:00.000Z")]],
    ],
)
def test_valid_keys(key):
    assert is_valid_key(key)


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        UNDEFINED,
        math.nan,
        {},
        {"a": 1},
        Date("NaN"),
        Blob(b"x", "text/plain"),
        TMap([]),
        TSet([]),
        PropModification("add", 1),
        [1, None],
        ["a", True],
        [[{}]],
        [math.nan],
    ],
)
def test_invalid_keys(value):
    assert not is_valid_key(value)


# --- ordering -------------------------------------------------------------------

# Strictly ascending in IndexedDB order.
ASCENDING = [
    -math.inf,
    -1e300,
    -1,
    -0.5,
    0,
    1,
    1.5,
    2**53,
    math.inf,
    Date("1969-12-31T23:59:59.999Z"),
    Date("1970-01-01T00:00:00.000Z"),
    Date("2024-01-02T03:04:05.006Z"),
    "",
    "\x00",
    "A",
    "B",
    "a",
    "ab",
    "b",
    "é",
    "\ud7ff",
    "\ud83d",  # lone lead surrogate: a prefix of the emoji's UTF-16 units
    "\U0001f600",  # U+1F600 is D83D DE00 in UTF-16: below U+E000
    "\U0010ffff",  # DBFF DFFF
    "\ue000",
    "\uffff",
    "\uffffa",
    Binary("ArrayBuffer", b""),
    Binary("Uint8Array", b"\x00"),
    Binary("Uint8Array", b"\x00\x00"),
    Binary("Int8Array", b"\x01"),
    Binary("Uint8Array", b"\xff"),
    [],
    [-math.inf],
    [0],
    [0, 0],
    [1],
    ["a"],
    ["a", "b"],
    ["b"],
    [Binary("Uint8Array", b"")],
    [[]],
    [[], []],
    [[0]],
    [[[]]],
]


def test_ascending_pairs():
    for i, a in enumerate(ASCENDING):
        for j, b in enumerate(ASCENDING):
            expected = (i > j) - (i < j)
            assert compare_keys(a, b) == expected, (a, b)


def test_sort_with_compare_keys():
    shuffled = ASCENDING[1::2] + ASCENDING[::2]
    assert sorted(shuffled, key=functools.cmp_to_key(compare_keys)) == ASCENDING


def test_strings_compare_by_utf16_code_units_not_code_points():
    # JS: "\u{1F600}" < "\uFFFF" is true; Python's code-point order says otherwise.
    assert "\U0001f600" > "\uffff"
    assert compare_keys("\U0001f600", "\uffff") == -1
    assert compare_keys("\uffff", "\U0001f600") == 1
    assert compare_keys("\ude00", "\U0001f600") == 1  # lone trail DE00 > lead D83D
    assert compare_keys("x\U0001f600", "x\ue000") == -1


def test_surrogate_pair_split_in_two_code_points_equals_the_pair():
    assert compare_keys("\ud83d\ude00", "\U0001f600") == 0
    assert compare_keys(["\ud83d\ude00"], ["\U0001f600"]) == 0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (0, -0.0),
        (1, 1.0),
        ("abc", "abc"),
        (Date("2024-01-01T01:00:00.000+01:00"), Date("2024-01-01T00:00:00.000Z")),
        (Binary("ArrayBuffer", b"\x01\x02"), Binary("Uint8Array", b"\x01\x02")),
        (Binary("Int16Array", b"\x01\x02"), Binary("Uint8Array", b"\x01\x02")),
        ([1, ["a"]], [1.0, ["a"]]),
    ],
)
def test_equal_keys(a, b):
    assert compare_keys(a, b) == 0
    assert compare_keys(b, a) == 0


def test_dexie_min_and_max_key_bounds():
    for key in ASCENDING[1:]:
        assert compare_keys(-math.inf, key) == -1
    # [[]] (Dexie's maxKey) is above every key that is not an array of arrays.
    for key in ASCENDING[: ASCENDING.index([[]])]:
        assert compare_keys(key, [[]]) == -1


@pytest.mark.parametrize(
    ("a", "b"), [(True, 1), (1, None), ("a", {}), (math.nan, 1), (Date("NaN"), 1), (UNDEFINED, "a")]
)
def test_invalid_keys_raise(a, b):
    with pytest.raises(ValueError):
        compare_keys(a, b)
    with pytest.raises(ValueError):
        compare_keys(b, a)


def test_utf16_helper():
    assert utf16("a\U0001f600") == b"\x00a\xd8\x3d\xde\x00"
    assert utf16("\ud800") == b"\xd8\x00"


# Reference order: (type rank, payload), strings as UTF-16-BE bytes.
def _reference(key):
    if isinstance(key, int | float):
        return (0, key)
    if isinstance(key, Date):
        return (1, key.epoch_ms)
    if isinstance(key, str):
        return (2, key.encode("utf-16-be", "surrogatepass"))
    if isinstance(key, Binary):
        return (3, key.data)
    return (4, tuple(_reference(item) for item in key))


_texts = st.text(
    st.characters(exclude_categories=())
    | st.sampled_from(["\uffff", "\ue000", "\U0001f600", "\ud83d", "\ude00", "a"]),
    max_size=4,
)
_dates = st.integers(-(10**13), 10**13).map(Date.from_epoch_ms)
_scalars = (
    st.floats(allow_nan=False)
    | st.integers(-(2**53), 2**53)
    | _dates
    | _texts
    | st.binary(max_size=3).map(lambda b: Binary("Uint8Array", b))
)
_keys = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=8)


@given(_keys, _keys)
def test_compare_keys_matches_reference_order(a, b):
    ref_a, ref_b = _reference(a), _reference(b)
    assert compare_keys(a, b) == (ref_a > ref_b) - (ref_a < ref_b)
    assert compare_keys(b, a) == -compare_keys(a, b)


@given(st.lists(_keys, max_size=8))
def test_sorting_is_a_total_order(keys):
    assert sorted(keys, key=functools.cmp_to_key(compare_keys)) == sorted(keys, key=_reference)


# --- wire keys ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "key"),
    [
        ('["rlm-public","admin"]', ["rlm-public", "admin"]),
        ('[1,[2,"x"],-0.5]', [1, [2, "x"], -0.5]),
        ("[]", []),
        ("abc", "abc"),
        ("", ""),
        ("[", "["),
        ("]", "]"),
        ("[not json]", "[not json]"),
        ("[NaN]", "[NaN]"),  # JSON.parse rejects it, so the client keeps the string
        ('["a"]x', '["a"]x'),
        ("#id:user1", "#id:user1"),
        ('["\\ud83d\\ude00"]', ["\U0001f600"]),
    ],
)
def test_decode_wire_key(wire, key):
    assert decode_wire_key(wire) == key


@pytest.mark.parametrize(
    ("key", "wire"),
    [
        (["rlm-public", "admin"], '["rlm-public","admin"]'),
        ("plain", "plain"),
        ('["looks","compound"]', '["looks","compound"]'),
        ([], "[]"),
        ([[1, 2.0], ["a", []]], '[[1,2],["a",[]]]'),
        (
            [1.0, 2.5, -0.0, 1e21, 1e-7, 2**60, 123456789012345680000, 0.000001, 1.5e-7, 5e-324],
            "[1,2.5,0,1e+21,1e-7,1152921504606847000,123456789012345680000,0.000001,1.5e-7,5e-324]",
        ),
        ([math.nan, math.inf, -math.inf], "[null,null,null]"),
        (
            ['a"b\\c\n\x01\x7f\u2028é\U0001f600\ud800'],
            '["a\\"b\\\\c\\n\\u0001\x7f\u2028é\U0001f600\\ud800"]',
        ),
        (["\ud83d\ude00"], '["\U0001f600"]'),
        ([Date("2024-01-02T03:04:05.006Z"), Date("NaN")], '["2024-01-02T03:04:05.006Z",null]'),
    ],
)
def test_encode_wire_key(key, wire):
    assert encode_wire_key(key) == wire


@pytest.mark.parametrize("key", [5, None, {}, [{}], [Binary("Uint8Array", b"")], UNDEFINED])
def test_encode_wire_key_refuses_non_keys(key):
    with pytest.raises(ValueError):
        encode_wire_key(key)


_wire_parts = st.recursive(
    _texts | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=6,
)


@given(st.lists(_wire_parts, max_size=4))
def test_wire_keys_round_trip(key):
    wire = encode_wire_key(key)
    # Equal as JS keys: a surrogate pair written as two code points comes back
    # as one astral character, which is the same UTF-16 string.
    assert compare_keys(decode_wire_key(wire), key) == 0


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (-1.5, "-1.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e16, "10000000000000000"),
        (1e21, "1e+21"),
        (-1e21, "-1e+21"),
        (1.2345e22, "1.2345e+22"),
        (123456789012345680000.0, "123456789012345680000"),
        (2**53, "9007199254740992"),
        (2**60, "1152921504606847000"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (10**400, "Infinity"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (math.nan, "NaN"),
    ],
)
def test_js_number_to_string(number, text):
    assert js_number_to_string(number) == text


def test_numbers_compare_as_doubles():
    # JS prints 2**60 as 1152921504606847000; as a double that is 2**60 again.
    assert compare_keys(1152921504606847000, 2**60) == 0
    assert compare_keys(55081567891259690, 5.508156789125969e16) == 0
    assert compare_keys(10**400, math.inf) == 0
    assert decode_wire_key("[1152921504606847000,1]") == [2.0**60, 1]
    assert type(decode_wire_key("[1]")[0]) is int
