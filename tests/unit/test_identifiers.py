"""Text no database stores, identifier limits in bytes, and numbers a column or
``int()`` cannot take (dxc.tson, dxc.protocol.identifiers, revisions, live)."""

from __future__ import annotations

import pytest

from dxc.protocol import ProtocolError
from dxc.protocol.identifiers import (
    KEY_BYTES,
    TABLE_BYTES,
    check_identifier,
    check_indexed_props,
    identifier_problem,
)
from dxc.protocol.live import SocketQuery
from dxc.protocol.request import Operation, check_operation
from dxc.protocol.revisions import decode_revision
from dxc.tson import PropModification, TSONError, check_plain, loads, safe_text, text_problem


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


def _one_by_one(operation: Operation) -> None:
    """What :func:`check_operation` checks, each identifier on its own (its slow path)."""
    check_identifier(operation.table, "table", TABLE_BYTES)
    for key in operation.keys:
        check_identifier(key, f"{operation.type}: key", KEY_BYTES)
    for value in (*(operation.values or ()), *(operation.change_specs or ())):
        if value is not None:
            check_indexed_props(operation.table, value)
    if operation.change_spec is not None:
        check_indexed_props(operation.table, operation.change_spec)


def _outcome(check, operation: Operation) -> str | None:
    try:
        check(operation)
    except ProtocolError as error:
        return str(error)
    return None


_SURROGATE = loads('"\\ud800"')


@pytest.mark.parametrize(("keys", "value", "table"), [
    (["itm1", "itm2"], {"realmId": "rlm1", "owner": "a@x"}, "items"),
    (["itm1", "itm\x00"], {"realmId": "rlm1"}, "items"),
    (["itm1", ""], {}, "items"),
    (["é" * 300], {}, "items"),  # 300 characters, 600 bytes: fits, the long way
    (["\U0001f600" * 300], {}, "items"),  # 1200 bytes
    (["k" * (KEY_BYTES + 1)], {}, "items"),
    (["itm1"], {"realmId": ""}, "items"),  # an empty realm is stored (refused later)
    (["itm1"], {"owner": None}, "items"),
    (["itm1"], {"owner": "a" + _SURROGATE}, "items"),
    (["itm1"], {"realmId": ["rlm1", "x\x00"]}, "items"),
    (["itm1"], {"realmId": PropModification("add", ["x\x00"])}, "items"),
    (["mmb1"], {"email": "x" + _SURROGATE, "realmId": "rlm1"}, "members"),
    (["mmb1"], {"userId": "u" * 2000}, "members"),
    (["itm1"], {"userId": "u" * 2000}, "items"),  # not indexed in this table
])
def test_check_operation_says_what_the_checks_one_by_one_say(keys, value, table):
    """Its one scan for the lot accepts only what each check accepts, and on anything
    else the checks one by one give the answer."""
    put = Operation("upsert", table, keys, values=[dict(value) for _ in keys])
    update = Operation("update", table, keys, change_specs=[dict(value) for _ in keys])
    modify = Operation("modify", table, [], change_spec=dict(value))
    for operation in (put, update, modify):
        assert _outcome(check_operation, operation) == _outcome(_one_by_one, operation)
