"""Change specs and PropModifications, applied exactly as Dexie applies them.

The client applies an update locally with ``applyUpdateSpec``/``setByKeyPath``
and the server applies the same spec to its copy (spec §4.6); any difference
in semantics would leave the two copies different forever. So these
functions follow Dexie's JS line by line, including JS coercions:

* ``Number(x)``: undefined → NaN, null → 0, booleans → 0/1, strings by the
  JS grammar (whitespace trimmed, "" → 0, ``0x``/``0o``/``0b``, "Infinity"),
  Dates → epoch ms, anything else → ``Number(String(x))`` (``[]`` → 0,
  ``[5]`` → 5, objects → NaN).
* ``String(x)`` (used by the default array sort): numbers as JS prints them,
  arrays joined by "," (null/undefined items as ""), typed arrays as their
  element list, Dates as ``Date.prototype.toString`` in UTC (the client's
  time zone is unknown), other objects as ``[object Object]``/``[object Map]``….

Setting below a string or number does nothing, as in Dexie (primitives
are frozen). Where JS would throw because of the stored data (deleting or
setting an invalid array ``length``), nothing is done either: failing would
reject the client's whole transaction over one property. Typed arrays are
opaque: key paths do not reach into their elements. A PropModification
term that Dexie refuses raises `ChangeSpecError`.
"""

from __future__ import annotations

import copy
import math
import re
import struct
from typing import Any

from dxc.protocol.keys import js_number_to_string, to_double, utf16
from dxc.tson import (
    UNDEFINED,
    Binary,
    Blob,
    Date,
    PropModification,
    TMap,
    TSet,
    civil_from_days,
)

__all__ = [
    "MAX_ARRAY_GROWTH",
    "ChangeSpecError",
    "apply_change_spec",
    "apply_prop_modification",
    "get_by_key_path",
    "js_string",
    "js_to_number",
    "set_by_key_path",
]

#: How far past its end a key path may grow an array. JS arrays are sparse,
#: so ``{"list.4000000000": 1}`` is cheap there; here it would fill memory.
MAX_ARRAY_GROWTH = 10_000

_MAX_ARRAY_INDEX = 2**32 - 2
_INDEX = re.compile(r"0|[1-9][0-9]*")
_PARSE_INT_START = re.compile(r"[+-]?(0[xX])?(.?)", re.DOTALL)


class ChangeSpecError(ValueError):
    """A change spec the client could not have applied either."""


# --- key paths ----------------------------------------------------------------


def get_by_key_path(obj: Any, path: str) -> Any:
    """Dexie's ``getByKeyPath``: the value at a dotted path, UNDEFINED if missing.

    As in Dexie, a property literally named ``path`` wins over the dotted
    walk, numeric segments index arrays, and ``length`` of an array or string
    is its length.
    """
    if _has_own(obj, path):
        return _get(obj, path)
    if not path:
        return obj
    head, dot, rest = path.partition(".")
    if not dot:
        return UNDEFINED
    inner = _get(obj, head)
    if inner is None or inner is UNDEFINED:
        return UNDEFINED
    return get_by_key_path(inner, rest)


def set_by_key_path(obj: Any, path: str, value: Any) -> None:
    """Dexie's ``setByKeyPath``, mutating ``obj``.

    Missing or falsy intermediate values become ``{}`` (not when deleting).
    UNDEFINED deletes the property; on an array a numeric last segment
    splices the element out (later ones shift), as ``Array.splice`` would.
    """
    if not _truthy(obj):
        return
    head, dot, rest = path.partition(".")
    if not dot or not rest:  # "a" or "a." (Dexie treats a trailing dot like none)
        _set_own(obj, head, value)
        return
    inner = _get(obj, head)
    if not _truthy(inner) or not _has_own(obj, head):
        if value is UNDEFINED:
            return  # deleting below a missing object creates nothing
        inner = {}
        if not _put(obj, head, inner):
            return
    set_by_key_path(inner, rest, value)


def _has_own(obj: Any, key: str) -> bool:
    """JS ``hasOwnProperty`` for the values a decoded object can hold."""
    if isinstance(obj, dict):
        return key in obj
    if isinstance(obj, list | str):
        if key == "length":
            return True
        index = _array_index(key)
        return index is not None and index < _length(obj)
    return False


def _get(obj: Any, key: str) -> Any:
    """JS ``obj[key]`` (own properties only)."""
    if isinstance(obj, dict):
        return obj.get(key, UNDEFINED)
    if isinstance(obj, list | str):
        if key == "length":
            return _length(obj)
        index = _array_index(key)
        if index is None or index >= _length(obj):
            return UNDEFINED
        if isinstance(obj, str):
            return _utf16_slice(obj, index, index + 1)
        return obj[index]
    return UNDEFINED


def _length(obj: list | str) -> int:
    """JS ``length``: strings count UTF-16 code units."""
    if isinstance(obj, str) and not obj.isascii():
        return len(utf16(obj)) // 2
    return len(obj)


def _utf16_slice(text: str, start: int, stop: int | None = None) -> str:
    """JS ``text.substring(start, stop)``: indexes count UTF-16 code units."""
    if text.isascii():
        return text[start:stop]
    units = utf16(text)[2 * start : None if stop is None else 2 * stop]
    return units.decode("utf-16-be", "surrogatepass")


def _array_index(key: str) -> int | None:
    """The array index a property name denotes in JS, if any."""
    if _INDEX.fullmatch(key):
        index = int(key)
        if index <= _MAX_ARRAY_INDEX:
            return index
    return None


def _set_own(obj: Any, key: str, value: Any) -> None:
    """The last step of setByKeyPath: assign, delete or splice."""
    if value is not UNDEFINED:
        _put(obj, key, value)
    elif isinstance(obj, dict):
        obj.pop(key, None)
    elif isinstance(obj, list) and not _parse_int_is_nan(key):
        _splice_one(obj, key)


def _put(obj: Any, key: str, value: Any) -> bool:
    """JS ``obj[key] = value``; False where the value would not be stored.

    A property that is not an index on an array is lost when IndexedDB
    stores the array; Dexie skips primitives (they are frozen).
    """
    if isinstance(obj, dict):
        obj[key] = value
        return True
    if not isinstance(obj, list):
        return False
    if key == "length":
        length = js_to_number(value)
        if length == length and 0 <= length <= _MAX_ARRAY_INDEX + 1 and length == int(length):
            _resize(obj, int(length))
        return False
    index = _array_index(key)
    if index is None:
        return False
    if index >= len(obj):
        _resize(obj, index + 1)
    obj[index] = value
    return True


def _resize(array: list, length: int) -> None:
    if length <= len(array):
        del array[length:]
        return
    if length - len(array) > MAX_ARRAY_GROWTH:
        raise ChangeSpecError(f"key path grows an array of {len(array)} to {length} items")
    array.extend([None] * (length - len(array)))  # JS leaves holes; JSON makes them null


def _splice_one(array: list, start: str) -> None:
    """``array.splice(start, 1)`` with JS's coercion of ``start``."""
    number = js_to_number(start)
    if number != number:
        number = 0
    elif not math.isinf(number):
        number = math.trunc(number)
    if number < 0:
        number = max(len(array) + number, 0)
    if number < len(array):
        del array[int(number)]


def _parse_int_is_nan(text: str) -> bool:
    """Whether JS ``parseInt(text)`` is NaN: no digit after whitespace, a sign
    and an optional ``0x``."""
    match = _PARSE_INT_START.match(text.lstrip(_JS_WHITESPACE))
    hex_prefix, digit = match.group(1), match.group(2)  # the pattern always matches
    return not digit or digit not in ("0123456789abcdefABCDEF" if hex_prefix else "0123456789")


# --- change specs -------------------------------------------------------------


def apply_change_spec(obj: dict, spec: dict | None) -> dict:
    """A copy of ``obj`` with the change spec applied, like Dexie's ``applyUpdateSpec``.

    Key paths apply in JS ``Object.keys`` order (array-index names first,
    ascending, then the rest as given); the wire already has that order. A
    PropModification runs against the value at its path; a plain value is
    set unless it is ``===`` the current one.
    """
    result = _clone(obj)
    spec = spec or {}
    for path in _js_key_order(spec):
        value = as_prop_modification(spec[path])
        current = get_by_key_path(result, path)
        if isinstance(value, PropModification):
            set_by_key_path(result, path, _clone(apply_prop_modification(current, value)))
        elif not _strict_equal(current, value):
            set_by_key_path(result, path, _clone(value))
    return result


def as_prop_modification(value: Any) -> Any:
    """``value``, or the PropModification it stands for.

    The client logs its mutations in IndexedDB, whose structured clone drops
    the PropModification class; what it sends is then the plain object
    ``{"@@propmod": {"add": 1}}`` rather than the ``$t`` form. Both mean the
    same, as they do to Dexie.
    """
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("@@propmod"), dict):
        spec = value["@@propmod"]
        if len(spec) == 1:
            (op, arg), = spec.items()
            try:
                return PropModification(op, arg)
            except ValueError:
                return value
    return value


def _js_key_order(obj: dict) -> list[str]:
    indexes = sorted((index, key) for key in obj if (index := _array_index(key)) is not None)
    if not indexes:
        return list(obj)
    return [key for _, key in indexes] + [key for key in obj if _array_index(key) is None]


def _clone(value: Any) -> Any:
    """A deep copy that shares the immutable leaves (str, numbers, Date, Binary…)."""
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    if isinstance(value, TMap | TSet):
        return copy.deepcopy(value)
    return value


# --- PropModification ---------------------------------------------------------


def apply_prop_modification(old: Any, pm: PropModification) -> Any:
    """The new value of a property: Dexie's ``PropModification.execute(old)``.

    * add n: ``(Number(old) || 0) + n``; add [items]: old array (or []) plus
      items, not de-duplicated, then JS default ``sort()``.
    * remove n: ``Number(old) - n`` (NaN for non-numeric old); remove [items]:
      old array without items (SameValueZero, so objects never match) then
      ``sort()``; a non-array old becomes [].
    * replacePrefix [from, to]: on a string starting with ``String(from)``
      (and a truthy ``from``), ``String(to)`` + the rest; otherwise unchanged.
      A non-array argument leaves the value unchanged (JS would index into it).
    An argument of UNDEFINED leaves the value unchanged, as in Dexie.
    """
    arg = pm.arg
    if arg is UNDEFINED:
        return old
    if pm.op in ("add", "remove"):
        if isinstance(arg, list):
            if pm.op == "add":
                return _js_sort([*(old if isinstance(old, list) else []), *arg])
            if not isinstance(old, list):
                return []
            return _js_sort([x for x in old if not any(_same_value_zero(x, y) for y in arg)])
        if _js_type(arg) != "number":
            raise ChangeSpecError(f"PropModification {pm.op}: invalid term {arg!r}")
        if pm.op == "add":
            base = _double(js_to_number(old))
            return _number((base if base == base else 0.0) + _double(arg))
        return _number(_double(js_to_number(old)) - _double(arg))
    # replacePrefix
    if not isinstance(arg, list):
        return old
    prefix = arg[0] if arg else UNDEFINED
    replacement = arg[1] if len(arg) > 1 else UNDEFINED
    if not _truthy(prefix) or not isinstance(old, str):
        return old
    if not utf16(old).startswith(utf16(js_string(prefix))):
        return old
    # substring(prefix.length): strings and arrays have a length, numbers do not.
    cut = _length(prefix) if isinstance(prefix, str | list) else 0
    return js_string(replacement) + _utf16_slice(old, cut)


def _double(value: int | float) -> float:
    return float(to_double(value))


def _number(value: float) -> int | float:
    """A JS number result as Python keeps it: integral values as int."""
    if value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


def _js_sort(items: list) -> list:
    """``Array.prototype.sort()`` without comparator: by ``String(x)`` in
    UTF-16 order, stable, undefined items last."""
    defined = [x for x in items if x is not UNDEFINED]
    defined.sort(key=lambda x: utf16(js_string(x)))
    return defined + [UNDEFINED] * (len(items) - len(defined))


def _js_type(value: Any) -> str:
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def _strict_equal(a: Any, b: Any) -> bool:
    """JS ``a === b``; decoded objects are never the same object."""
    kind = _js_type(a)
    if kind != _js_type(b):
        return False
    if kind == "number":
        return to_double(a) == to_double(b)
    return a is b if kind == "object" else a == b


def _same_value_zero(a: Any, b: Any) -> bool:
    """JS ``includes`` equality: like ``===`` but NaN equals NaN."""
    if _strict_equal(a, b):
        return True
    return _js_type(a) == "number" == _js_type(b) and a != a and b != b


def _truthy(value: Any) -> bool:
    if value is UNDEFINED or value is None or value is False:
        return False
    if isinstance(value, int | float | str):
        return bool(value) and value == value
    return True


# --- JS coercions -------------------------------------------------------------

_JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DECIMAL = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX = re.compile(r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+")
_RADIX_BASE = {"x": 16, "o": 8, "b": 2}


def js_to_number(value: Any) -> int | float:
    """JS ``Number(value)``."""
    kind = _js_type(value)
    if kind == "number":
        return value
    if kind == "boolean":
        return int(value)
    if kind == "null":
        return 0
    if kind == "undefined":
        return math.nan
    if isinstance(value, Date):
        return value.epoch_ms
    return _string_to_number(value if kind == "string" else js_string(value))


def _string_to_number(text: str) -> int | float:
    text = text.strip(_JS_WHITESPACE)
    if not text:
        return 0
    if _RADIX.fullmatch(text):
        return _number(_double(int(text[2:], _RADIX_BASE[text[1].lower()])))
    if _DECIMAL.fullmatch(text):
        return _number(float(text.replace("Infinity", "inf")))
    return math.nan


_TYPED_ARRAY_FORMATS = {
    "Int8Array": "b",
    "Uint8Array": "B",
    "Uint8ClampedArray": "B",
    "Int16Array": "<h",
    "Uint16Array": "<H",
    "Int32Array": "<i",
    "Uint32Array": "<I",
    "Float32Array": "<f",
    "Float64Array": "<d",
    "BigInt64Array": "<q",
    "BigUint64Array": "<Q",
}
_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def js_string(value: Any) -> str:
    """JS ``String(value)``."""
    kind = _js_type(value)
    if kind == "string":
        return value
    if kind == "number":
        return js_number_to_string(value)
    if kind == "boolean":
        return "true" if value else "false"
    if kind != "object":
        return kind  # "undefined" or "null"
    if isinstance(value, list):
        return ",".join("" if x is None or x is UNDEFINED else js_string(x) for x in value)
    if isinstance(value, Date):
        return _date_to_string(value.epoch_ms)
    if isinstance(value, Binary):
        fmt = _TYPED_ARRAY_FORMATS.get(value.type_name)
        if fmt is None:  # ArrayBuffer, DataView
            return f"[object {value.type_name}]"
        items = (item for (item,) in struct.iter_unpack(fmt, value.data))
        return ",".join(str(x) if isinstance(x, int) else js_number_to_string(x) for x in items)
    if isinstance(value, Blob):
        return "[object Blob]" if value.name is None else "[object File]"
    if isinstance(value, TMap | TSet):
        return "[object Map]" if isinstance(value, TMap) else "[object Set]"
    return "[object Object]"


def _date_to_string(ms: float) -> str:
    """``Date.prototype.toString()`` as it reads in UTC, e.g.
    ``Tue Jan 02 2024 03:04:05 GMT+0000 (Coordinated Universal Time)``."""
    if math.isnan(ms):
        return "Invalid Date"
    days, ms_of_day = divmod(int(ms), 86_400_000)
    year, month, day = civil_from_days(days)
    seconds = ms_of_day // 1000
    year_text = f"{year:04d}" if year >= 0 else f"-{-year:04d}"
    return (
        f"{_DAYS[(days + 4) % 7]} {_MONTHS[month - 1]} {day:02d} {year_text} "
        f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d} "
        "GMT+0000 (Coordinated Universal Time)"
    )
