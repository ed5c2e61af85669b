"""Tests for dxc.tson against vectors made by the real client codec.

tson_vectors.json comes from tests/tools/make_tson_vectors.mjs (dexie-cloud-common
1.0.59 assembled as dexie-cloud-addon does); see that script for the fields.
"""

import copy
import json
import math
import pickle
from pathlib import Path

import pytest

from dxc.tson import (
    UNDEFINED,
    Binary,
    Blob,
    Date,
    PropModification,
    TMap,
    TSet,
    TSONError,
    Undefined,
    UnknownTyped,
    b64lex_decode,
    b64lex_encode,
    decode,
    dumps,
    encode,
    loads,
)

VECTORS = json.loads((Path(__file__).parent / "tson_vectors.json").read_text("utf-8"))
BY_NAME = {vector["name"]: vector for vector in VECTORS}
# What the client cannot parse we reject too, unless `expect` gives a form it can
# (a Set holding undefined, which only our output repairs).
REJECTED = [
    v for v in VECTORS if v.get("dxc_error") or ("js_parse_error" in v and "expect" not in v)
]
ACCEPTED = [v for v in VECTORS if v not in REJECTED]


def vector_id(vector: dict) -> str:
    return vector["name"]


def same_json(a: str, b: str) -> bool:
    """Equal as JSON values; dicts compare without key order, ints equal floats."""
    return json.loads(a) == json.loads(b)


def vec(name: str):
    return loads(BY_NAME[name]["tson"])


# --- the real codec's vectors ---------------------------------------------------


def test_vectors_cover_the_ground():
    tson = "".join(v["tson"] for v in VECTORS)
    for tag in (
        "undefined", "number", "Date", "Map", "Set", "Blob", "File", "PropModification",
        "ArrayBuffer", "DataView", "Int8Array", "Uint8Array", "Uint8ClampedArray",
        "Int16Array", "Uint16Array", "Int32Array", "Uint32Array", "Float32Array",
        "Float64Array", "BigInt64Array", "BigUint64Array",
    ):  # fmt: skip
        assert f'"$t":"{tag}"' in tson, tag


@pytest.mark.parametrize("vector", ACCEPTED, ids=vector_id)
def test_round_trip_is_lossless(vector):
    assert same_json(dumps(loads(vector["tson"])), vector.get("expect", vector["tson"]))


@pytest.mark.parametrize("vector", ACCEPTED, ids=vector_id)
def test_round_trip_from_bytes(vector):
    assert same_json(
        dumps(loads(vector["tson"].encode("utf-8"))), vector.get("expect", vector["tson"])
    )


@pytest.mark.parametrize("vector", REJECTED, ids=vector_id)
def test_rejects_what_the_client_rejects(vector):
    with pytest.raises(TSONError):
        loads(vector["tson"])


@pytest.mark.parametrize("vector", [v for v in VECTORS if "expect" in v], ids=vector_id)
def test_our_deviations_parse_cleanly_in_the_client(vector):
    # The generator parsed our form with the real client: it must come back unchanged.
    assert vector["expect_js_reencoded"] == vector["expect"]


@pytest.mark.parametrize("vector", [v for v in VECTORS if "epoch_ms" in v], ids=vector_id)
def test_date_epoch_ms_matches_js(vector):
    value = loads(vector["tson"])
    dates = value if isinstance(value, list) else [value]
    expected = vector["epoch_ms"] if isinstance(value, list) else [vector["epoch_ms"]]
    for date, ms in zip(dates, expected, strict=True):
        if ms is None:
            assert math.isnan(date.epoch_ms), date.iso
        else:
            assert date.epoch_ms == ms, date.iso


def test_from_epoch_ms_matches_to_iso_string():
    vector = BY_NAME["Date sweep"]
    dates = loads(vector["tson"])
    assert len(dates) == len(vector["epoch_ms"]) == 300
    for date, ms in zip(dates, vector["epoch_ms"], strict=True):
        assert Date.from_epoch_ms(ms) == date


# --- decoded values -------------------------------------------------------------


def test_plain_json_passes_through():
    assert vec("plain object") == {
        "a": 1, "b": "two", "c": True, "d": None, "e": [1, 2, 3], "f": {"g": {}},
    }  # fmt: skip
    assert vec("plain string top level") == "hello"
    assert vec("integer top level") == 42


def test_special_numbers():
    value = vec("numbers special")
    assert math.isnan(value["nan"])
    assert value["inf"] == math.inf
    assert value["ninf"] == -math.inf
    assert all(type(x) is float for x in value.values())


def test_undefined():
    assert vec("undefined top level") is UNDEFINED
    assert vec("undefined property") == {"a": UNDEFINED, "b": 1}
    assert vec("undefined in array") == {"a": [1, UNDEFINED, 3]}
    assert Undefined() is UNDEFINED
    assert not UNDEFINED
    assert repr(UNDEFINED) == "undefined"
    assert copy.deepcopy([UNDEFINED])[0] is UNDEFINED
    assert pickle.loads(pickle.dumps(UNDEFINED)) is UNDEFINED


def test_dates():
    assert vec("Date typical") == {"due": Date("2024-01-02T03:04:05.006Z")}
    assert vec("Date invalid") == Date("NaN")
    assert math.isnan(Date("NaN").epoch_ms)
    assert vec("Date extended year +010000").epoch_ms == 253402300800000
    assert vec("Date year -000001").iso == "-000001-01-01T00:00:00.000Z"
    # The text is kept as sent, even where JS would normalise it.
    assert vec("Date with offset").iso == "2024-05-06T07:08:09.5+02:00"


@pytest.mark.parametrize(
    ("ms", "iso"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (-0.0, "1970-01-01T00:00:00.000Z"),
        (1.9, "1970-01-01T00:00:00.001Z"),
        (-1.9, "1969-12-31T23:59:59.999Z"),
        (253402300799999, "9999-12-31T23:59:59.999Z"),
        (253402300800000, "+010000-01-01T00:00:00.000Z"),
        (-62167219200001, "-000001-12-31T23:59:59.999Z"),
        (8.64e15, "+275760-09-13T00:00:00.000Z"),
        (8.64e15 + 1, "NaN"),
        (-8.64e15 - 1, "NaN"),
        (math.nan, "NaN"),
        (math.inf, "NaN"),
    ],
)
def test_from_epoch_ms(ms, iso):
    assert Date.from_epoch_ms(ms).iso == iso


def test_binary():
    assert vec("Uint8Array") == Binary("Uint8Array", b"\x01\x02\x03")
    assert vec("ArrayBuffer all bytes") == Binary("ArrayBuffer", bytes(range(256)))
    assert vec("ArrayBuffer empty") == Binary("ArrayBuffer", b"")
    assert vec("Uint8Array subarray").data == bytes(range(3, 8))
    assert vec("DataView over a slice") == Binary("DataView", bytes([2, 3, 4]))
    assert vec("Int16Array").data == b"\x00\x80\xff\xff\x00\x00\x01\x00\xff\x7f"
    assert vec("BigUint64Array").data == bytes(8) + b"\xff" * 8
    assert vec("binary in object") == {
        "u": {"$t": "user data"},
        "y": Binary("Uint8Array", b"\xff\xfe"),
    }


@pytest.mark.parametrize(
    ("type_name", "length"),
    [("Int16Array", 3), ("Uint32Array", 6), ("Float64Array", 12), ("BigInt64Array", 4)],
)
def test_binary_rejects_misaligned_lengths(type_name, length):
    text = json.dumps({"$t": type_name, "v": b64lex_encode(bytes(length))})
    with pytest.raises(TSONError):
        loads(text)
    with pytest.raises(TSONError):
        Binary(type_name, bytes(length))


def test_blob_and_file():
    assert vec("Blob") == Blob(b"\x00\x01\x80\xffhi", "application/octet-stream")
    assert vec("Blob empty") == Blob(b"", "text/plain")
    assert vec("File") == Blob(b"hello file", "text/plain", "a.txt", "2024-06-10T06:13:20.123Z")
    assert vec("File in object")["att"].name == "ü $t.bin"
    assert encode(Blob(b"\x01\x02\x03", "image/png")) == {
        "$t": "Blob",
        "v": "AQID",
        "type": "image/png",
    }
    with pytest.raises(TSONError):
        Blob(b"", "text/plain", name="a.txt")


def test_map_and_set():
    assert vec("Map") == TMap([("a", 1), (2, Date("1970-01-01T00:00:00.000Z")), ({"k": 1}, [1, 2])])
    assert vec("Set") == TSet(["a", 1, None, {"$x": 1}])
    assert vec("Map empty") == TMap([])
    inner = vec("Map in Set").items[0].items[0]
    assert inner[0] == "x"
    assert math.isnan(inner[1].items[0])
    assert vec("undefined as Map key and value") == TMap([("k", UNDEFINED), (UNDEFINED, 2)])
    assert vec("dollar keys inside Map key") == TMap([({"$k": 1}, {"$v": 2})])


def test_dollar_keys():
    assert vec("dollar keys") == {
        "$t": "x", "$": 1, "$$x": 2, "$ts": 3, "a$": 4, "": 5, "plain": 6,
    }  # fmt: skip
    assert vec("looks typed but plain") == {"$t": "Date", "v": "2024-01-01T00:00:00.000Z"}
    assert vec("looks undefined but plain") == {"$t": "undefined"}
    assert vec("dollar keys nested") == {"$jobs": {"$$deep": [{"$t": 1}]}}
    request = vec("sync request")
    assert "$jobs" in request["schema"]
    assert request["changes"][0]["muts"][0]["values"][0]["$ts"] == 1
    assert encode({"$t": 1, "$": 2, "a": {"$$b": 3}}) == {"$$t": 1, "$$": 2, "a": {"$$$b": 3}}


def test_strings():
    value = vec("unicode")
    assert value["astral"] == "😀 𝄞 🇸🇪"
    assert value["клю😀ч"] == "astral key"
    assert value["controls"] == "\x00\x01\b\f\n\r\t\x1f\x7f"
    assert "😀" in dumps(value)  # not \u-escaped
    assert vec("lone surrogates") == ["\ud800", "a\udfffb", "\ud83d"]
    text = dumps(["\ud800", "å"])
    text.encode("utf-8")  # still sendable
    assert json.loads(text) == ["\ud800", "å"]


def test_prop_modifications():
    assert vec("PropModification add number") == {"meta.count": PropModification("add", 1)}
    assert vec("PropModification remove array") == {"tags": PropModification("remove", ["x"])}
    assert vec("PropModification replacePrefix") == {
        "path": PropModification("replacePrefix", ["foo/", "bar/"])
    }
    assert vec("PropModification add Date array")["d"].arg == [Date("1970-01-01T00:00:00.000Z")]
    with pytest.raises(TSONError):
        PropModification("multiply", 2)


@pytest.mark.parametrize(
    "text",
    [
        '{"$t":"PropModification"}',
        '{"$t":"PropModification","add":1,"remove":1}',
        '{"$t":"PropModification","foo":1}',
    ],
)
def test_prop_modification_must_have_one_known_op(text):
    with pytest.raises(TSONError):
        loads(text)


def test_unknown_typed_is_kept():
    value = vec("unknown $t kept")
    assert value == UnknownTyped({"$t": "foo", "$x": 1, "y": Date("2020-01-01T00:00:00.000Z")})
    assert vec("bigint is unknown to the client") == {
        "n": UnknownTyped({"$t": "bigint", "v": "12"})
    }
    assert vec("non-string $t") == UnknownTyped({"$t": 5, "a": 1})


def test_protocol_request():
    request = vec("sync request")
    assert request["dbID"] is UNDEFINED
    assert request["lastPull"]["yServerRevision"] is UNDEFINED
    update, delete, modify = request["changes"][0]["muts"][1:]
    assert update["changeSpecs"][0]["oldProp"] is UNDEFINED
    assert update["changeSpecs"][0]["meta.count"] == PropModification("add", 1)
    assert delete["criteria"] is UNDEFINED
    assert modify["criteria"]["range"]["lower"] == -math.inf
    assert request["y"][0]["u"] == Binary("Uint8Array", b"\x01\x02\x03")


# --- encoding -------------------------------------------------------------------


def test_b64lex():
    assert b64lex_encode(bytes([1, 2, 3])) == "0G83"
    assert b64lex_decode("0G83") == bytes([1, 2, 3])
    assert b64lex_encode(b"\xff\xfe") == "||t-"
    assert b64lex_decode("||t-") == b"\xff\xfe"
    assert b64lex_decode("||t") == b"\xff\xfe"
    # b64lex sorts like the bytes it encodes.
    samples = [bytes([a, b]) for a in (0, 1, 127, 128, 254, 255) for b in (0, 62, 63, 255)]
    assert sorted(samples, key=b64lex_encode) == sorted(samples)


@pytest.mark.parametrize("text", ["AQID+", "0G8=", "0G83!", "0G\u00e583", "0", "0G8--"])
def test_b64lex_rejects_bad_text(text):
    with pytest.raises(TSONError):
        b64lex_decode(text)


def test_undefined_in_lists_becomes_null():
    assert dumps([1, UNDEFINED]) == "[1,null]"
    assert dumps({"a": [UNDEFINED]}) == '{"a":[null]}'
    assert dumps(TSet([UNDEFINED])) == '{"$t":"Set","v":[null]}'
    assert dumps(PropModification("add", [UNDEFINED])) == '{"$t":"PropModification","add":[null]}'
    # Outside lists it survives.
    assert dumps({"a": UNDEFINED}) == '{"a":{"$t":"undefined"}}'
    assert dumps(UNDEFINED) == '{"$t":"undefined"}'
    assert dumps(TMap([("k", UNDEFINED)])) == '{"$t":"Map","v":[["k",{"$t":"undefined"}]]}'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3"),
        (-0.0, "0"),
        (0, "0"),
        (1.5, "1.5"),
        (2.0**53, "9007199254740992"),
        (2.0**60, "1152921504606847000"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (math.nan, '{"$t":"number","v":"NaN"}'),
        (math.inf, '{"$t":"number","v":"Infinity"}'),
        (-math.inf, '{"$t":"number","v":"-Infinity"}'),
        (2**64, "18446744073709551616"),
        (True, "true"),
    ],
)
def test_numbers_as_js_prints_them(value, text):
    assert dumps(value) == text


def test_dumps_is_compact():
    value = {"a": [1, {"b": "ü"}], "c": Binary("ArrayBuffer", b"")}
    assert dumps(value) == '{"a":[1,{"b":"ü"}],"c":{"$t":"ArrayBuffer","v":""}}'


def test_encode_tuples_and_subclasses():
    from collections import OrderedDict
    from enum import IntEnum

    class Level(IntEnum):
        HIGH = 2

    assert encode((1, UNDEFINED)) == [1, None]
    assert encode(OrderedDict([("$a", Level.HIGH)])) == {"$$a": 2}


@pytest.mark.parametrize(
    "value",
    [
        {1: "int key"},
        b"raw bytes",
        {1, 2},
        object(),
        Binary,
    ],
    ids=["int key", "bytes", "set", "object", "class"],
)
def test_encode_rejects_unknown_values(value):
    with pytest.raises(TSONError):
        encode(value)


def test_encode_never_emits_bigint():
    assert dumps(12345678901234567890) == "12345678901234567890"


def test_decode_takes_parsed_json():
    parsed = {"$$a": [{"$t": "undefined"}], "d": {"$t": "Date", "v": "NaN"}}
    assert decode(parsed) == {"$a": [UNDEFINED], "d": Date("NaN")}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a":{"b":[{"$t":"Date","v":"x"}]},"c":1}', {"a": {"b": [Date("x")]}, "c": 1}),
        ('{"$$a":{"$$b":[1]},"$a":2}', {"$a": {"$b": [1]}, "a": 2}),
        ('{"$b":1,"b":2}', {"b": 2}),  # the key written last wins
        ('{"b":2,"$b":1}', {"b": 1}),
        ('[{"$t":"undefined"},[{"$$t":"Date"}]]', [UNDEFINED, [{"$t": "Date"}]]),
    ],
)
def test_containers_revived_in_place_read_as_copies_did(text, value):
    assert loads(text) == value
    assert loads(text.encode()) == value


# --- errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":"\xff"}',  # invalid UTF-8
        b'"\xed\xa0\x80"',  # UTF-8-encoded surrogate
        "",
        "{",
        '{"a":1,}',
        "[1 2]",
        "NaN",
        "[Infinity]",
        '{"a":-Infinity}',
        "1" * 5000,  # past Python's int digit limit
        '{"$t":"Date"}',
        '{"$t":"Date","v":5}',
        '{"$t":"Uint8Array","v":null}',
        '{"$t":"Uint8Array","v":"!!!!"}',
        '{"$t":"ArrayBuffer","v":"AQID+"}',
        '{"$t":"Blob","v":"0G83-","type":"x"}',
        '{"$t":"Blob","v":"AQID"}',
        '{"$t":"File","v":"AQID","type":"","name":"a"}',
        '{"$t":"File","v":"AQID","type":"","name":1,"lastModified":"x"}',
        '{"$t":"number","v":"nan"}',
        '{"$t":"number"}',
        '{"$t":"number","v":[]}',
        '{"$t":"Map","v":{}}',
        '{"$t":"Map","v":[["k"]]}',
        '{"$t":"Map","v":[1]}',
        '{"$t":"Set","v":"abc"}',
    ],
)
def test_loads_errors(text):
    with pytest.raises(TSONError):
        loads(text)


def test_max_depth():
    assert loads("[" * 100 + "]" * 100) is not None
    with pytest.raises(TSONError):
        loads("[" * 101 + "]" * 101)
    assert loads('{"a":' * 5 + "1" + "}" * 5, max_depth=5) is not None
    with pytest.raises(TSONError):
        loads('{"a":' * 6 + "1" + "}" * 6, max_depth=5)
    # Typed values count as levels too, including a Map's entry pairs.
    assert loads('{"$t":"Map","v":[[1,2]]}', max_depth=3) == TMap([(1, 2)])
    with pytest.raises(TSONError):
        loads('{"$t":"Map","v":[[1,2]]}', max_depth=2)
    with pytest.raises(TSONError):
        decode([[[]]], max_depth=2)


def test_very_deep_text_is_a_tson_error_not_recursion_error():
    with pytest.raises(TSONError):
        loads("[" * 200_000 + "]" * 200_000)
    with pytest.raises(TSONError):
        loads('{"a":' * 200_000 + "1" + "}" * 200_000, max_depth=10**6)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":"\\ud800"}',  # a lone surrogate: orjson refuses it
        "[123456789012345678901234567890]",  # beyond 64 bits: orjson reads a float
        "[18446744073709551616,-9223372036854775809]",
        '{"n":[0.1,1.5e-7,0.00001,1e+21,-0]}',
    ],
)
def test_the_fast_codec_keeps_what_the_standard_library_reads(text):
    value = loads(text)
    assert value == json.loads(text)
    assert loads(text.encode()) == value  # bytes look for long numbers their own way
    assert type(value) is type(json.loads(text))
    assert loads(dumps(value)) == value


def test_numbers_are_written_as_javascript_writes_them():
    assert dumps([1.5e-7, 0.00001, 1e21, 0.1, 2.0**60]) == (
        "[1.5e-7,0.00001,1e+21,0.1,1152921504606847000]"
    )
