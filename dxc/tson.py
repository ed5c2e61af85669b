"""TSON, the typed JSON of the Dexie Cloud sync protocol (spec: sync.md §2.3).

TSON is JSON plus inline typed values ``{"$t": <type>, ...}`` and one rule
for keys: in every plain object a key starting with ``$`` carries one more
``$`` on the wire. Typed values become the small classes below so that a
value survives a trip through the server byte for byte; everything else is
plain Python (dict, list, str, int, float, bool, None).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

__all__ = [
    "UNDEFINED",
    "Binary",
    "Blob",
    "Date",
    "PropModification",
    "TMap",
    "TSONError",
    "TSet",
    "Undefined",
    "UnknownTyped",
    "b64lex_decode",
    "b64lex_encode",
    "check_plain",
    "decode",
    "dumps",
    "encode",
    "loads",
    "safe_text",
    "text_problem",
]


class TSONError(ValueError):
    """The text or value is not TSON the client would accept."""


class Undefined:
    """JS ``undefined``: "absent" in protocol fields, "delete" in change specs."""

    __slots__ = ()
    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        # copy, deepcopy and pickle keep the singleton.
        return "UNDEFINED"


UNDEFINED = Undefined()


@dataclass(frozen=True)
class Date:
    """A JS ``Date``, kept as the exact ISO text the client sent ("NaN" if invalid)."""

    iso: str

    @property
    def epoch_ms(self) -> float:
        """Milliseconds since the epoch as JS ``Date.parse`` gives them, or NaN."""
        return _parse_iso(self.iso)

    @classmethod
    def from_epoch_ms(cls, ms: float) -> Date:
        """The ``Date`` JS builds from ``new Date(ms)``, as ``toISOString()`` prints it."""
        return cls(_format_iso(ms))


#: Binary type names the client revives, with their element size in bytes.
_ELEMENT_SIZE = {
    "ArrayBuffer": 1,
    "DataView": 1,
    "Int8Array": 1,
    "Uint8Array": 1,
    "Uint8ClampedArray": 1,
    "Int16Array": 2,
    "Uint16Array": 2,
    "Int32Array": 4,
    "Uint32Array": 4,
    "Float32Array": 4,
    "Float64Array": 8,
    "BigInt64Array": 8,
    "BigUint64Array": 8,
}


@dataclass(frozen=True)
class Binary:
    """An ``ArrayBuffer``, typed array or ``DataView``; the type name is kept so
    the client gets back exactly the type it sent."""

    type_name: str
    data: bytes

    def __post_init__(self) -> None:
        size = _ELEMENT_SIZE.get(self.type_name)
        if size is None:
            raise TSONError(f"unknown binary type {self.type_name!r}")
        if len(self.data) % size:
            # new Int16Array(buffer) throws and aborts the client's whole parse.
            raise TSONError(
                f"{self.type_name} needs a multiple of {size} bytes, got {len(self.data)}"
            )


@dataclass(frozen=True)
class Blob:
    """A ``Blob``, or a ``File`` when ``name`` is set (then ``last_modified``
    is the ISO text of its modification time)."""

    data: bytes
    content_type: str
    name: str | None = None
    last_modified: str | None = None

    def __post_init__(self) -> None:
        if (self.name is None) != (self.last_modified is None):
            raise TSONError("a File needs both name and last_modified, a Blob neither")


@dataclass
class TMap:
    """A JS ``Map``: ordered pairs, since keys may be unhashable (dicts, lists)."""

    items: list[tuple[Any, Any]]


@dataclass
class TSet:
    """A JS ``Set``: ordered items, since items may be unhashable."""

    items: list[Any]


_PROP_OPS = frozenset({"add", "remove", "replacePrefix"})


@dataclass(frozen=True)
class PropModification:
    """A Dexie ``PropModification`` in a change spec: ``add``, ``remove`` or
    ``replacePrefix`` with its argument (spec §4.6)."""

    op: str
    arg: Any

    def __post_init__(self) -> None:
        if self.op not in _PROP_OPS:
            raise TSONError(f"unknown PropModification {self.op!r}")


@dataclass(frozen=True)
class UnknownTyped:
    """An object whose ``$t`` the client does not know; it keeps it as a plain
    object, so it is kept here and re-emitted as it came. ``fields`` holds the
    ``$t`` entry and the other (unescaped, decoded) entries."""

    fields: dict


# --- base64 -------------------------------------------------------------------

_STD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_LEX = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz|-"
_STD_TO_LEX = bytes.maketrans(_STD, _LEX)
# Anything outside the lex alphabet becomes "!", which b64decode rejects.
_LEX_TO_STD = bytes(_STD[_LEX.index(i)] if i in _LEX else ord("!") for i in range(256))


def b64lex_encode(data: bytes) -> str:
    """Base64 in the b64lex alphabet, whose text sorts like the bytes."""
    return base64.b64encode(data).translate(_STD_TO_LEX).decode("ascii")


def b64lex_decode(text: str) -> bytes:
    """Inverse of `b64lex_encode`; missing padding is tolerated, like ``atob``."""
    return _b64decode(text, _LEX_TO_STD)


def _b64decode(text: str, table: bytes | None = None) -> bytes:
    try:
        data = text.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        raise TSONError("base64 payload must be ASCII text") from None
    if table is not None:
        data = data.translate(table)
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except binascii.Error:
        raise TSONError("invalid base64 text") from None


# --- decoding -----------------------------------------------------------------

_NUMBERS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _reject_constant(name: str) -> None:
    raise TSONError(f"{name} is not JSON")


#: A run of digits that may be an integer beyond 64 bits: orjson reads it as a float.
_LONG_NUMBER = re.compile("[0-9]{20}")
_LONG_DIGITS = b"0" * 20
#: Bytes with every digit made a ``0``: a run of 20 digits becomes ``_LONG_DIGITS``,
#: which ``bytes.find`` spots fifteen times sooner than the regular expression does.
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)


def loads(text: str | bytes, *, max_depth: int = 100) -> Any:
    """Parse a TSON document (UTF-8 bytes or str).

    orjson parses it when it can; what orjson refuses or reads differently
    (lone surrogates in escapes, integers beyond 64 bits, ``1e400``, a BOM,
    invalid UTF-8, bad JSON) takes the standard library's path, which keeps
    the values and error messages the server always had."""
    if not _may_hold_long_number(text):
        try:
            return _decode(orjson.loads(text), max_depth)
        except orjson.JSONDecodeError:
            pass
    return _loads_slowly(text, max_depth)


def _may_hold_long_number(text: str | bytes) -> bool:
    if isinstance(text, str):
        return _LONG_NUMBER.search(text) is not None
    return text.translate(_DIGITS_AS_ZERO).find(_LONG_DIGITS) >= 0


def _loads_slowly(text: str | bytes, max_depth: int) -> Any:
    if not isinstance(text, str):
        try:
            text = str(text, "utf-8")
        except UnicodeDecodeError:
            raise TSONError("body is not UTF-8") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except TSONError:
        raise
    except RecursionError:
        raise TSONError("nesting too deep") from None
    except ValueError as exc:  # JSONDecodeError, or an int past the digit limit
        raise TSONError(f"invalid JSON: {exc}") from None
    return _decode(obj, max_depth)


def decode(obj: Any, *, max_depth: int = 100) -> Any:
    """Revive typed values and unescape ``$`` keys in already-parsed JSON, in place:
    ``obj`` (which only its caller holds) becomes part of the answer."""
    return _decode(obj, max_depth)


def _decode(value: Any, depth: int) -> Any:
    # `depth` is how many more containers may be entered. Containers are changed in
    # place, not copied (a third less time for a big body): JSON just parsed shares none.
    cls = type(value)
    if cls is dict:
        if depth <= 0:
            raise TSONError("nesting too deep")
        if "$t" in value:
            return _decode_typed(value, depth - 1)
        depth -= 1
        escaped = False
        for key, item in value.items():
            if type(item) in _CONTAINERS:
                value[key] = _decode(item, depth)  # a new value, not a new key
            if key[:1] == "$":
                escaped = True
        if escaped:
            return {(key[1:] if key[:1] == "$" else key): item for key, item in value.items()}
        return value
    if cls is list:
        if depth <= 0:
            raise TSONError("nesting too deep")
        depth -= 1
        for index, item in enumerate(value):
            if type(item) in _CONTAINERS:
                value[index] = _decode(item, depth)
        return value
    return value


_CONTAINERS = frozenset({dict, list})


def _decode_typed(obj: dict, depth: int) -> Any:
    tag = obj["$t"]
    reviver = _REVIVERS.get(tag) if type(tag) is str else None
    if reviver is None:
        fields = {"$t": tag}
        for key, item in obj.items():
            if key != "$t":
                fields[key[1:] if key[:1] == "$" else key] = _decode(item, depth)
        return UnknownTyped(fields)
    return reviver(obj, depth)


def _text(obj: dict, key: str) -> str:
    value = obj.get(key)
    if type(value) is not str:
        raise TSONError(f"{obj.get('$t')}: {key!r} must be a string")
    return value


def _revive_number(obj: dict, depth: int) -> float:
    try:
        return _NUMBERS[obj.get("v")]
    except (KeyError, TypeError):
        raise TSONError(f"invalid typed number {obj.get('v')!r}") from None


def _revive_binary(obj: dict, depth: int) -> Binary:
    return Binary(obj["$t"], b64lex_decode(_text(obj, "v")))


def _revive_blob(obj: dict, depth: int) -> Blob:
    return Blob(_b64decode(_text(obj, "v")), _text(obj, "type"))


def _revive_file(obj: dict, depth: int) -> Blob:
    return Blob(
        _b64decode(_text(obj, "v")),
        _text(obj, "type"),
        _text(obj, "name"),
        _text(obj, "lastModified"),
    )


def _revive_map(obj: dict, depth: int) -> TMap:
    entries = obj.get("v")
    if type(entries) is not list:
        raise TSONError("Map: 'v' must be a list")
    items = []
    for entry in _decode(entries, depth):
        if type(entry) is not list or len(entry) != 2:
            raise TSONError("Map: each entry must be a [key, value] pair")
        items.append((entry[0], entry[1]))
    return TMap(items)


def _revive_set(obj: dict, depth: int) -> TSet:
    items = obj.get("v")
    if type(items) is not list:
        raise TSONError("Set: 'v' must be a list")
    return TSet(_decode(items, depth))


def _revive_propmod(obj: dict, depth: int) -> PropModification:
    spec = [key for key in obj if key != "$t"]
    if len(spec) != 1:
        raise TSONError(f"PropModification needs exactly one operation, got {spec}")
    return PropModification(spec[0], _decode(obj[spec[0]], depth))


_REVIVERS = {
    "undefined": lambda obj, depth: UNDEFINED,
    "number": _revive_number,
    "Date": lambda obj, depth: Date(_text(obj, "v")),
    "Blob": _revive_blob,
    "File": _revive_file,
    "Map": _revive_map,
    "Set": _revive_set,
    "PropModification": _revive_propmod,
    **dict.fromkeys(_ELEMENT_SIZE, _revive_binary),
}


# --- text no database stores -------------------------------------------------

# JSON may carry both as escapes (\u0000, \ud800), and JS strings hold them,
# but PostgreSQL refuses NUL in text and UTF-8 cannot encode a lone surrogate.
# Inside a stored value they are harmless (``dumps`` escapes them again); as an
# identifier or a column value they would fail deep inside a statement.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: The widest integer a database column holds (BIGINT).
_INT64 = 2**63


def text_problem(text: str) -> str | None:
    """What keeps ``text`` out of a database column (None: nothing).

    A surrogate left in a ``str`` from JSON is a lone one: ``json`` joins
    escaped pairs, and UTF-8 bodies cannot hold surrogates at all.
    """
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return "contains a NUL character" if found.group() == "\x00" else "contains a lone surrogate"


def safe_text(text: str) -> str:
    """``text`` with NUL and lone surrogates written as ``\\uXXXX``: fit to echo anywhere."""
    return _UNSTORABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def check_plain(value: Any, path: str = "") -> None:
    """Raise :class:`TSONError` at the first string (or property name) of decoded
    JSON ``value`` that no database column stores, or at a number no column
    holds: beyond a BIGINT, or not finite (``1e400`` parses as infinity).

    For bodies whose text is stored as it is (logins, users, administration),
    unlike synced objects, whose values are stored as TSON text.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if problem := text_problem(key):
                raise TSONError(f"a property name in {safe_text(path) or 'the body'} {problem}")
            check_plain(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_plain(item, f"{path}[{index}]")
    elif problem := _scalar_problem(value):
        raise TSONError(f"{safe_text(path) or 'the body'} {problem}")


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number"
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        return "is a number beyond a 64-bit integer"
    return None


# --- encoding -----------------------------------------------------------------


def dumps(value: Any) -> str:
    """Serialise to compact TSON text, as the client's ``TSON.stringify`` would.

    orjson writes numbers as JavaScript does (``1e-7``, ``0.00001``); what it
    refuses (lone surrogates, integers beyond 64 bits) the standard library writes."""
    data = encode(value)
    try:
        return orjson.dumps(data).decode("utf-8")
    except orjson.JSONEncodeError:
        pass
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates are legal in JS strings but not in UTF-8: escape
            # them as JSON.stringify does (this escapes all non-ASCII, still valid).
            text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text


def encode(value: Any) -> Any:
    """Turn a Python value into JSON-able data in TSON form (``UNDEFINED`` in a
    list becomes ``None``, see `_encode_item`)."""
    cls = type(value)
    if cls in _PLAIN:
        return value
    encoder = _ENCODERS.get(cls)
    if encoder is not None:
        return encoder(value)
    # Subclasses (IntEnum, StrEnum, OrderedDict, ...) are rare: take the slow path.
    for base, encoder in _ENCODERS.items():
        if isinstance(value, base):
            return encoder(value)
    if isinstance(value, (str, int)):
        return value
    raise TSONError(f"cannot encode {cls.__name__} as TSON")


def _encode_item(value: Any) -> Any:
    # The client's parse turns an array holding undefined into an object
    # ([1, undefined] -> {"0": 1, "1": undefined}), so send null instead.
    return None if value is UNDEFINED else encode(value)


def _encode_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TSONError(f"object keys must be str, got {type(key).__name__}")
    return "$" + key if key[:1] == "$" else key


def _encode_dict(obj: dict) -> dict:
    out = {}
    for key, item in obj.items():
        if type(key) is not str or key[:1] == "$":
            key = _encode_key(key)
        out[key] = item if type(item) in _PLAIN else encode(item)
    return out


def _encode_list(items: list | tuple) -> list:
    return [item if type(item) in _PLAIN else _encode_item(item) for item in items]


def _encode_float(x: float) -> Any:
    if x != x:
        return {"$t": "number", "v": "NaN"}
    if x in (math.inf, -math.inf):
        return {"$t": "number", "v": "Infinity" if x > 0 else "-Infinity"}
    if x.is_integer() and -1e21 < x < 1e21:
        # JS prints integral numbers below 1e21 without ".0" (and -0 as 0);
        # past 2**53 it pads the shortest round-trip digits with zeros.
        return int(x) if -(2**53) <= x <= 2**53 else int(Decimal(repr(x)))
    return x


def _encode_map(value: TMap) -> dict:
    # The client revives undefined inside a Map entry correctly, so keep it.
    return {
        "$t": "Map",
        "v": [[encode(key), encode(item)] for key, item in value.items],
    }


def _encode_file(value: Blob) -> dict:
    data = base64.b64encode(value.data).decode("ascii")
    if value.name is None:
        return {"$t": "Blob", "v": data, "type": value.content_type}
    return {
        "$t": "File",
        "v": data,
        "type": value.content_type,
        "name": value.name,
        "lastModified": value.last_modified,
    }


def _encode_unknown(value: UnknownTyped) -> dict:
    out = {"$t": value.fields.get("$t")}
    for key, item in value.fields.items():
        if key != "$t":
            out[_encode_key(key)] = encode(item)
    return out


_PLAIN = frozenset({str, int, bool, type(None)})

_ENCODERS: dict[type, Any] = {
    dict: _encode_dict,
    list: _encode_list,
    tuple: _encode_list,
    float: _encode_float,
    Undefined: lambda value: {"$t": "undefined"},
    Date: lambda value: {"$t": "Date", "v": value.iso},
    Binary: lambda value: {"$t": value.type_name, "v": b64lex_encode(value.data)},
    Blob: _encode_file,
    TMap: _encode_map,
    TSet: lambda value: {"$t": "Set", "v": _encode_list(value.items)},
    PropModification: lambda value: {"$t": "PropModification", value.op: encode(value.arg)},
    UnknownTyped: _encode_unknown,
}


# --- dates --------------------------------------------------------------------

_MAX_TIME = 8.64e15  # the range of a JS Date, in ms either side of the epoch

# ECMAScript's date-time string format, with V8's leniencies (lowercase or
# space separator, any number of fraction digits, offset without colon).
_ISO_RE = re.compile(
    r"([+-][0-9]{6}|[0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)


def _days_from_civil(year: int, month: int, day: int) -> int:
    # Howard Hinnant's algorithm, proleptic Gregorian; days past the end of a
    # month roll over into the next one, as V8 does.
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) of a day count from 1970-01-01
    (Howard Hinnant's algorithm, the inverse of ``_days_from_civil``)."""
    days += 719_468
    era = days // 146_097
    day_of_era = days - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    return year_of_era + era * 400 + (month <= 2), month, day


def _parse_iso(text: str) -> float:
    match = _ISO_RE.fullmatch(text)
    if match is None or text.startswith("-000000"):
        return math.nan
    year, month, day, hour, minute, second, frac, zone = match.groups()
    month, day = int(month or 1), int(day or 1)
    hour, minute, second = int(hour or 0), int(minute or 0), int(second or 0)
    ms = int((frac or "0")[:3].ljust(3, "0"))
    if not (1 <= month <= 12 and 1 <= day <= 31 and minute < 60 and second < 60):
        return math.nan
    if hour > 24 or (hour == 24 and (minute or second or ms)):
        return math.nan
    offset = 0
    if zone and zone not in "Zz":
        zone_h, zone_m = int(zone[1:3]), int(zone[-2:])
        if zone_h > 23 or zone_m > 59:
            return math.nan
        offset = (zone_h * 60 + zone_m) * (1 if zone[0] == "+" else -1)
    # A date-time without offset is local time in JS; the server has no
    # local time zone of the client, so it is taken as UTC.
    days = _days_from_civil(int(year), month, day)
    t = ((days * 24 + hour) * 60 + minute - offset) * 60_000 + second * 1000 + ms
    return float(t) if -_MAX_TIME <= t <= _MAX_TIME else math.nan


def _format_iso(ms: float) -> str:
    if not math.isfinite(ms) or abs(ms) > _MAX_TIME:
        return "NaN"
    days, rest = divmod(int(ms), 86_400_000)  # int() truncates like TimeClip
    year, month, day = civil_from_days(days)
    hour, rest = divmod(rest, 3_600_000)
    minute, rest = divmod(rest, 60_000)
    second, milli = divmod(rest, 1000)
    sign = "" if 0 <= year <= 9999 else "+" if year > 0 else "-"
    year_text = f"{sign}{abs(year):06d}" if sign else f"{year:04d}"
    return f"{year_text}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"
