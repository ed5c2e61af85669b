"""Text no database stores, identifier limits in bytes, and numbers a column or
``int()`` cannot take (dxc.tson, dxc.protocol.identifiers, revisions, live)."""

from __future__ import annotations

import pytest

from dxc.protocol import ProtocolError
from dxc.protocol.identifiers import KEY_BYTES, TABLE_BYTES, check_identifier, identifier_problem
from dxc.protocol.live import SocketQuery
from dxc.protocol.revisions import decode_revision
from dxc.tson import TSONError, check_plain, loads, safe_text, text_problem


@pytest.mark.parametrize(("text", "problem"), [
    ("plain", None),
    ("\U0001f600", None),  # a pair, joined by the JSON decoder
    (loads('"\\ud83d\\ude00"'), None),
    ("a\x00b", "contains a NUL character"),
    (loads('"\\ud800"'), "contains a lone surrogate"),
    (loads('"x\\udc00"'), "contains a lone surrogate"),
])
def test_text_problem(text, problem):
    assert text_problem(text) == problem


def test_safe_text_escapes_only_what_no_column_stores():
    assert safe_text("tx\x00\ud800ok\U0001f600") == "tx\\u0000\\ud800ok\U0001f600"


@pytest.mark.parametrize(("text", "limit", "fits"), [
    ("k" * KEY_BYTES, KEY_BYTES, True),
    ("k" * (KEY_BYTES + 1), KEY_BYTES, False),
    ("é" * 127, TABLE_BYTES, True),  # 254 bytes
    ("é" * 128, TABLE_BYTES, False),  # 256 bytes, 128 characters
    ("\U0001f600" * 63, TABLE_BYTES, True),
])
def test_limits_count_utf8_bytes(text, limit, fits):
    assert (identifier_problem(text, limit) is None) == fits


@pytest.mark.parametrize("value", [None, 5, "", ["x"]])
def test_an_identifier_is_a_non_empty_string(value):
    with pytest.raises(ProtocolError, match="must be a non-empty string"):
        check_identifier(value, "key", KEY_BYTES)


def test_a_long_identifier_is_quoted_short():
    with pytest.raises(ProtocolError) as refused:
        check_identifier("x" * 20_000, "key", KEY_BYTES)
    assert len(str(refused.value)) < 100
    assert f"is longer than {KEY_BYTES} bytes" in str(refused.value)


@pytest.mark.parametrize(("body", "message"), [
    ({"a": ["ok", {"b": "x\x00"}]}, "a[1].b contains a NUL character"),
    ({"a\ud800": 1}, "a property name in the body contains a lone surrogate"),
    ({"n": float("inf")}, "n is not a finite number"),
    ([float("nan")], "[0] is not a finite number"),
    ({"n": 2**63}, "n is a number beyond a 64-bit integer"),
    ("\x00", "the body contains a NUL character"),
])
def test_check_plain_names_the_field(body, message):
    with pytest.raises(TSONError) as refused:
        check_plain(body)
    assert str(refused.value) == message


def test_check_plain_passes_what_columns_store():
    check_plain({"a": [1, -(2**63), 1.5, True, None, "é\U0001f600"], "b": {}})


@pytest.mark.parametrize(("token", "decoded"), [
    ("1:42", {1: 42}),
    ("1:42,3:7", {1: 42, 3: 7}),
    ("1:9223372036854775807", {1: 2**63 - 1}),
    ("1:9223372036854775808", None),  # beyond a BIGINT
    ("1:\u00b2", None),  # a digit to isdigit(), not to int()
    ("\u0661:1", None),  # an Arabic-Indic one
])
def test_revision_tokens_hold_bigints_of_ascii_digits(token, decoded):
    assert decode_revision(token) == decoded


def test_a_socket_version_in_other_digits_is_the_default():
    assert SocketQuery.parse({"v": "\u00b2"}).version == 1
    assert SocketQuery.parse({"v": "2"}).version == 2
