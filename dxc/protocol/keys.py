"""IndexedDB keys: validity, ordering and the string form keys take on the wire.

Criteria (spec §4.5) must select exactly the objects the client's IndexedDB
selected, so keys compare as IndexedDB compares them: number < Date < string
< binary < array, strings by UTF-16 code units. Wire keys are strings; a
compound key travels as its JS ``JSON.stringify`` text (§4.7).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any

from dxc.tson import Binary, Date

__all__ = [
    "compare_keys",
    "decode_wire_key",
    "encode_wire_key",
    "is_valid_key",
    "js_number_to_string",
    "to_double",
    "utf16",
]

# Type ranks in IndexedDB order.
_NUMBER, _DATE, _STRING, _BINARY, _ARRAY = range(5)
_RANKS = {int: _NUMBER, float: _NUMBER, str: _STRING, list: _ARRAY, Date: _DATE, Binary: _BINARY}
_SAFE_INTEGER = 2**53


def is_valid_key(value: Any) -> bool:
    """Whether IndexedDB accepts ``value`` as a key (anything else is not indexed)."""
    rank = _RANKS.get(type(value))  # exact types: bool is not a number here
    if rank is None:
        return False
    if rank in (_STRING, _BINARY):
        return True
    if rank == _NUMBER:
        return value == value  # not NaN
    if rank == _DATE:
        return not math.isnan(_epoch_ms(value.iso))
    return all(is_valid_key(item) for item in value)


def compare_keys(a: Any, b: Any) -> int:
    """-1, 0 or 1 as IndexedDB orders keys ``a`` and ``b``.

    Both must be valid keys; an invalid part met on the way raises ValueError.
    Numbers compare as JS doubles: an int past 2**53 (JSON text such as
    ``1152921504606847000``, which JS prints for 2**60) is rounded first.
    """
    if type(a) is str and type(b) is str:
        return _compare_strings(a, b)
    rank_a, rank_b = _rank(a), _rank(b)
    if rank_a != rank_b:
        return -1 if rank_a < rank_b else 1
    if rank_a == _NUMBER:
        a, b = to_double(a), to_double(b)
        return (a > b) - (a < b)
    if rank_a == _STRING:
        return _compare_strings(a, b)
    if rank_a == _DATE:
        ms_a, ms_b = _epoch_ms(a.iso), _epoch_ms(b.iso)
        return (ms_a > ms_b) - (ms_a < ms_b)
    if rank_a == _BINARY:
        return (a.data > b.data) - (a.data < b.data)
    for item_a, item_b in zip(a, b, strict=False):
        result = compare_keys(item_a, item_b)
        if result:
            return result
    return (len(a) > len(b)) - (len(a) < len(b))


def to_double(number: float) -> float:
    """The JS number (an IEEE double) for a Python number; small ints stay exact."""
    if type(number) is int and not -_SAFE_INTEGER <= number <= _SAFE_INTEGER:
        try:
            return float(number)
        except OverflowError:
            return math.inf if number > 0 else -math.inf
    return number


def utf16(text: str) -> bytes:
    """``text`` as UTF-16-BE bytes, which sort like JS strings (by code units,
    lone surrogates kept); Python's own order is by code points."""
    return text.encode("utf-16-be", "surrogatepass")


def _compare_strings(a: str, b: str) -> int:
    if a == b:
        return 0
    if a.isascii() and b.isascii():  # the common case; both orders agree
        return -1 if a < b else 1
    units_a, units_b = utf16(a), utf16(b)  # equal if a pair is split in one of them
    return (units_a > units_b) - (units_a < units_b)


def _rank(key: Any) -> int:
    rank = _RANKS.get(type(key))
    if (
        rank is None
        or (rank == _NUMBER and key != key)
        or (rank == _DATE and math.isnan(_epoch_ms(key.iso)))
    ):
        raise ValueError(f"not a valid IndexedDB key: {key!r}")
    return rank


@lru_cache(maxsize=4096)
def _epoch_ms(iso: str) -> float:
    # Dates are compared over and over in criteria; parsing the ISO text is not free.
    return Date(iso).epoch_ms


# --- keys on the wire ---------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_int(text: str) -> float:
    return to_double(int(text))


def decode_wire_key(key: str) -> Any:
    """The key the client means by wire key ``key``: ``[...]`` is a JSON compound
    key (as the client's ``JSON.parse``; unparsable text stays a string)."""
    if key[:1] == "[" and key[-1:] == "]":
        try:
            return json.loads(key, parse_constant=_reject_constant, parse_int=_parse_int)
        except ValueError:
            return key
    return key


def encode_wire_key(key: Any) -> str:
    """The wire string for ``key``: strings as they are, arrays as JS
    ``JSON.stringify`` prints them (the server must reproduce it byte for byte)."""
    if isinstance(key, str):
        return key
    if isinstance(key, list):
        return _stringify(key)
    raise ValueError(f"a wire key is a string or an array, not {key!r}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _stringify(value: Any) -> str:
    """JS ``JSON.stringify`` for the values a key can hold."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            # Pair up surrogates given as two code points; well-formed
            # JSON.stringify (ES2019) escapes the lone ones that remain.
            value = utf16(value).decode("utf-16-be", "surrogatepass")
            text = json.dumps(value, ensure_ascii=False)
            return _SURROGATE.sub(lambda m: "\\u%04x" % ord(m.group()), text)
        return json.dumps(value, ensure_ascii=False)
    if value is None or value is True or value is False:
        return json.dumps(value)
    if isinstance(value, int | float):
        text = js_number_to_string(value)
        return "null" if text in ("NaN", "Infinity", "-Infinity") else text
    if isinstance(value, list):
        return "[" + ",".join(_stringify(item) for item in value) + "]"
    if isinstance(value, Date):  # Date.prototype.toJSON
        ms = _epoch_ms(value.iso)
        return "null" if math.isnan(ms) else json.dumps(Date.from_epoch_ms(ms).iso)
    raise ValueError(f"cannot put {value!r} in a wire key")


def js_number_to_string(number: float) -> str:
    """JS ``String(number)`` (ECMAScript Number::toString): shortest round-trip
    digits, plain notation for exponents -7 < e < 21, else ``1e+21`` style."""
    if isinstance(number, int) and abs(number) <= _SAFE_INTEGER:
        return str(number)
    number = float(to_double(number))
    if number != number:
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"  # also -0
    sign = "-" if number < 0 else ""
    mantissa, _, exponent = repr(abs(number)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    stripped = digits.lstrip("0")
    # value = 0.<digits> * 10**point
    point = len(whole) + int(exponent or 0) - (len(digits) - len(stripped))
    digits = stripped.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        return sign + digits + "0" * (point - count)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    exp = point - 1
    head = digits[0] + ("." + digits[1:] if count > 1 else "")
    return f"{sign}{head}e{'+' if exp >= 0 else '-'}{abs(exp)}"
