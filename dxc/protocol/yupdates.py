"""Yjs updates in their two binary formats, converted one into the other.

The client (``y-dexie``) writes and reads Yjs's V2 update format; ``pycrdt``
(Rust's ``yrs``), which merges updates on the server, reads and writes only V1.
Both formats carry the same things in the same order (per client, its structs;
then the delete set); V1 writes every field into one stream, V2 spreads them
over run-length encoded columns. :func:`v2_to_v1` and :func:`v1_to_v2` walk an
update once and write each field in the other format, so converting what Yjs
wrote gives, byte for byte, what Yjs's ``convertUpdateFormat`` gives (tested
against the real ``yjs``). Values are copied, never interpreted, except the
JSON of embeds and formats, which V1 stores as text and V2 as lib0 ``any``.

Anything that is not a well-formed update raises :class:`Lib0Error`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Protocol

from dxc.cooperative import take_turns
from dxc.protocol.lib0 import Decoder, Encoder, Lib0Error
from dxc.tson import UNDEFINED

#: ``info`` bits of a struct: has an origin, has a right origin, has a parentSub.
_ORIGIN, _RIGHT_ORIGIN, _PARENT_SUB = 0x80, 0x40, 0x20
#: The content kind in the low five bits of ``info``; 0 is a GC, 10 a Skip.
_CONTENT, _SKIP = 0x1F, 10
#: Type references that carry a name (XML elements and hooks).
_NAMED_TYPES = (3, 5)
#: Structs per byte of update that a real update never reaches.
_STRUCTS_PER_BYTE = 8
#: Structs converted between two turns of the worker's other greenlets.
_TURN_EVERY = 1000
#: The largest integer lib0 writes as a varInt in ``any`` (2**31 - 1).
_BITS31 = 0x7FFFFFFF

ID = tuple[int, int]


def v2_to_v1(update: bytes) -> bytes:
    """A V2 update (the client's) in V1 (``pycrdt``'s)."""
    return _convert(lambda: _V2Reader(update), _V1Writer())


def v1_to_v2(update: bytes) -> bytes:
    """A V1 update in V2."""
    return _convert(lambda: _V1Reader(update), _V2Writer())


class _Reader(Protocol):
    rest: Decoder

    def client(self) -> int: ...
    def left_id(self) -> ID: ...
    def right_id(self) -> ID: ...
    def info(self) -> int: ...
    def string(self) -> str: ...
    def parent_info(self) -> bool: ...
    def type_ref(self) -> int: ...
    def length(self) -> int: ...
    def json(self) -> Any: ...
    def key(self) -> str: ...
    def reset_ds(self) -> None: ...
    def ds_clock(self) -> int: ...
    def ds_len(self) -> int: ...


class _Writer(Protocol):
    rest: Encoder

    def client(self, client: int) -> None: ...
    def left_id(self, id_: ID) -> None: ...
    def right_id(self, id_: ID) -> None: ...
    def info(self, info: int) -> None: ...
    def string(self, text: str) -> None: ...
    def parent_info(self, is_root_key: bool) -> None: ...
    def type_ref(self, ref: int) -> None: ...
    def length(self, length: int) -> None: ...
    def json(self, value: Any) -> None: ...
    def key(self, key: str) -> None: ...
    def reset_ds(self) -> None: ...
    def ds_clock(self, clock: int) -> None: ...
    def ds_len(self, length: int) -> None: ...
    def to_bytes(self) -> bytes: ...


def _convert(open_reader: Callable[[], _Reader], writer: _Writer) -> bytes:
    try:
        reader = open_reader()
        _copy_structs(reader, writer)
        _copy_delete_set(reader, writer)
    except Lib0Error:
        raise
    except (ValueError, OverflowError, RecursionError) as error:  # forged values
        raise Lib0Error(f"not a Yjs update: {error}") from None
    return writer.to_bytes()


def _copy_structs(reader: _Reader, writer: _Writer) -> None:
    # V2's columns repeat their last run for ever, so a forged count could make
    # structs out of no bytes at all: a real update has far fewer than this.
    budget = _STRUCTS_PER_BYTE * len(reader.rest.data) + 1024
    groups = reader.rest.var_uint()
    writer.rest.var_uint(groups)
    for _ in range(groups):
        structs = reader.rest.var_uint()
        budget -= structs
        if budget < 0:
            raise Lib0Error("more structs than an update of this size holds")
        writer.rest.var_uint(structs)
        writer.client(reader.client())
        writer.rest.var_uint(reader.rest.var_uint())  # the clock of the first struct
        for count in range(1, structs + 1):
            if count % _TURN_EVERY == 0:
                take_turns()  # a large document converts for seconds
            info = reader.info()
            if info == _SKIP:
                writer.info(_SKIP)
                writer.rest.var_uint(reader.rest.var_uint())
            elif info & _CONTENT:
                _copy_item(reader, writer, info)
            else:  # a GC
                writer.info(0)
                writer.length(reader.length())


def _copy_item(reader: _Reader, writer: _Writer, info: int) -> None:
    """An item; its ``info`` as Yjs writes it again: a parentSub only counts
    (and is only written) when the item has no origin to take its parent from."""
    if info & (_ORIGIN | _RIGHT_ORIGIN):
        info &= ~_PARENT_SUB
    writer.info(info)
    if info & _ORIGIN:
        writer.left_id(reader.left_id())
    if info & _RIGHT_ORIGIN:
        writer.right_id(reader.right_id())
    if not info & (_ORIGIN | _RIGHT_ORIGIN):  # no neighbour to take the parent from
        is_root_key = reader.parent_info()
        writer.parent_info(is_root_key)
        if is_root_key:
            writer.string(reader.string())
        else:
            writer.left_id(reader.left_id())
        if info & _PARENT_SUB:
            writer.string(reader.string())
    _copy_content(reader, writer, info & _CONTENT)


def _copy_content(reader: _Reader, writer: _Writer, kind: int) -> None:
    if kind == 1:  # deleted
        writer.length(reader.length())
    elif kind == 2:  # JSON: each value as JSON text in both formats
        count = reader.length()
        writer.length(count)
        for _ in range(count):
            writer.string(reader.string())
    elif kind == 3:  # binary
        writer.rest.var_uint8_array(reader.rest.var_uint8_array())
    elif kind == 4:  # string
        writer.string(reader.string())
    elif kind == 5:  # embed
        writer.json(reader.json())
    elif kind == 6:  # format
        writer.key(reader.key())
        writer.json(reader.json())
    elif kind == 7:  # a nested type
        ref = reader.type_ref()
        writer.type_ref(ref)
        if ref in _NAMED_TYPES:
            writer.key(reader.key())
    elif kind == 8:  # any: written alike in both formats
        count = reader.length()
        writer.length(count)
        for _ in range(count):
            writer.rest.raw(_raw_any(reader.rest))
    elif kind == 9:  # a subdocument
        writer.string(reader.string())
        writer.rest.raw(_raw_any(reader.rest))
    else:
        raise Lib0Error(f"unknown Yjs content kind {kind}")


def _copy_delete_set(reader: _Reader, writer: _Writer) -> None:
    """The delete set, as Yjs writes it after reading it: clients without
    deletions left out, the others by descending client id."""
    deletions: dict[int, list[tuple[int, int]]] = {}
    for _ in range(reader.rest.var_uint()):
        reader.reset_ds()
        client = reader.rest.var_uint()
        ranges = [(reader.ds_clock(), reader.ds_len()) for _ in range(reader.rest.var_uint())]
        if ranges:
            deletions.setdefault(client, []).extend(ranges)
    writer.rest.var_uint(len(deletions))
    for client in sorted(deletions, reverse=True):
        writer.reset_ds()
        writer.rest.var_uint(client)
        writer.rest.var_uint(len(deletions[client]))
        for clock, length in deletions[client]:
            writer.ds_clock(clock)
            writer.ds_len(length)


def _raw_any(decoder: Decoder) -> bytes:
    start = decoder.pos
    decoder.any()
    return bytes(decoder.data[start : decoder.pos])


# --- V1: every field in one stream ---------------------------------------------------


class _V1Reader:
    def __init__(self, update: bytes) -> None:
        self.rest = Decoder(update)

    def client(self) -> int:
        return self.rest.var_uint()

    def left_id(self) -> ID:
        return self.rest.var_uint(), self.rest.var_uint()

    right_id = left_id

    def info(self) -> int:
        return self.rest.uint8()

    def string(self) -> str:
        return self.rest.var_string()

    def parent_info(self) -> bool:
        return self.rest.var_uint() == 1

    def type_ref(self) -> int:
        return self.rest.var_uint()

    length = type_ref

    def json(self) -> Any:
        try:
            return _integral_floats(json.loads(self.rest.var_string()))
        except (ValueError, RecursionError) as error:
            raise Lib0Error(f"unreadable JSON in an update: {error}") from None

    key = string

    def reset_ds(self) -> None:
        pass

    ds_clock = type_ref
    ds_len = type_ref


class _V1Writer:
    def __init__(self) -> None:
        self.rest = Encoder()

    def to_bytes(self) -> bytes:
        return self.rest.to_bytes()

    def client(self, client: int) -> None:
        self.rest.var_uint(client)

    def left_id(self, id_: ID) -> None:
        self.rest.var_uint(id_[0])
        self.rest.var_uint(id_[1])

    right_id = left_id

    def info(self, info: int) -> None:
        self.rest.uint8(info)

    def string(self, text: str) -> None:
        self.rest.var_string(_well_formed(text))

    def parent_info(self, is_root_key: bool) -> None:
        self.rest.var_uint(1 if is_root_key else 0)

    def type_ref(self, ref: int) -> None:
        self.rest.var_uint(ref)

    length = type_ref

    def json(self, value: Any) -> None:
        self.rest.var_string(_json_text(value))

    key = string

    def reset_ds(self) -> None:
        pass

    ds_clock = type_ref
    ds_len = type_ref


# --- V2: columns with lib0's run-length encoders --------------------------------------


class _V2Reader:
    def __init__(self, update: bytes) -> None:
        rest = Decoder(update)
        rest.var_uint()  # feature flag, always 0
        self.key_clocks = _IntDiffOptRleDecoder(rest.var_uint8_array())
        self.clients = _UintOptRleDecoder(rest.var_uint8_array())
        self.left_clocks = _IntDiffOptRleDecoder(rest.var_uint8_array())
        self.right_clocks = _IntDiffOptRleDecoder(rest.var_uint8_array())
        self.infos = _RleDecoder(rest.var_uint8_array())
        self.strings = _StringDecoder(rest.var_uint8_array())
        self.parent_infos = _RleDecoder(rest.var_uint8_array())
        self.type_refs = _UintOptRleDecoder(rest.var_uint8_array())
        self.lengths = _UintOptRleDecoder(rest.var_uint8_array())
        self.rest = rest  # what follows the columns
        self.keys: list[str] = []
        self.ds_value = 0

    def client(self) -> int:
        return self.clients.read()

    def left_id(self) -> ID:
        return self.clients.read(), _clock(self.left_clocks.read())

    def right_id(self) -> ID:
        return self.clients.read(), _clock(self.right_clocks.read())

    def info(self) -> int:
        return self.infos.read()

    def string(self) -> str:
        return self.strings.read()

    def parent_info(self) -> bool:
        return self.parent_infos.read() == 1

    def type_ref(self) -> int:
        return self.type_refs.read()

    def length(self) -> int:
        return self.lengths.read()

    def json(self) -> Any:
        return self.rest.any()

    def key(self) -> str:
        clock = self.key_clocks.read()
        if 0 <= clock < len(self.keys):
            return self.keys[clock]
        key = self.strings.read()
        self.keys.append(key)
        return key

    def reset_ds(self) -> None:
        self.ds_value = 0

    def ds_clock(self) -> int:
        self.ds_value += self.rest.var_uint()
        return self.ds_value

    def ds_len(self) -> int:
        length = self.rest.var_uint() + 1
        self.ds_value += length
        return length


class _V2Writer:
    def __init__(self) -> None:
        self.rest = Encoder()
        self.key_count = 0
        self.key_clocks = _IntDiffOptRleEncoder()
        self.clients = _UintOptRleEncoder()
        self.left_clocks = _IntDiffOptRleEncoder()
        self.right_clocks = _IntDiffOptRleEncoder()
        self.infos = _RleEncoder()
        self.strings = _StringEncoder()
        self.parent_infos = _RleEncoder()
        self.type_refs = _UintOptRleEncoder()
        self.lengths = _UintOptRleEncoder()
        self.ds_value = 0

    def to_bytes(self) -> bytes:
        out = Encoder()
        out.var_uint(0)  # feature flag
        for column in (
            self.key_clocks, self.clients, self.left_clocks, self.right_clocks, self.infos,
            self.strings, self.parent_infos, self.type_refs, self.lengths,
        ):
            out.var_uint8_array(column.to_bytes())
        out.raw(self.rest.to_bytes())
        return out.to_bytes()

    def client(self, client: int) -> None:
        self.clients.write(client)

    def left_id(self, id_: ID) -> None:
        self.clients.write(id_[0])
        self.left_clocks.write(id_[1])

    def right_id(self, id_: ID) -> None:
        self.clients.write(id_[0])
        self.right_clocks.write(id_[1])

    def info(self, info: int) -> None:
        self.infos.write(info)

    def string(self, text: str) -> None:
        self.strings.write(text)

    def parent_info(self, is_root_key: bool) -> None:
        self.parent_infos.write(1 if is_root_key else 0)

    def type_ref(self, ref: int) -> None:
        self.type_refs.write(ref)

    def length(self, length: int) -> None:
        self.lengths.write(length)

    def json(self, value: Any) -> None:
        self.rest.any(value)

    def key(self, key: str) -> None:
        # Yjs gives every key written a new clock (it never reuses one).
        self.key_clocks.write(self.key_count)
        self.key_count += 1
        self.strings.write(key)

    def reset_ds(self) -> None:
        self.ds_value = 0

    def ds_clock(self, clock: int) -> None:
        if clock < self.ds_value:
            raise Lib0Error("delete set ranges out of order")
        self.rest.var_uint(clock - self.ds_value)
        self.ds_value = clock

    def ds_len(self, length: int) -> None:
        if length < 1:
            raise Lib0Error("an empty delete range")
        self.rest.var_uint(length - 1)
        self.ds_value += length


# --- lib0's run-length encoders, as V2 uses them ---------------------------------------


class _RleDecoder:
    """uint8 values, each followed by its repeat count minus one (none after the last)."""

    def __init__(self, data: bytes) -> None:
        self.decoder = Decoder(data)
        self.value = 0
        self.count = 0

    def read(self) -> int:
        if self.count == 0:
            self.value = self.decoder.uint8()
            # the last run has no count: it repeats for ever
            self.count = self.decoder.var_uint() + 1 if self.decoder.has_content() else -1
        self.count -= 1
        return self.value


class _RleEncoder:
    def __init__(self) -> None:
        self.encoder = Encoder()
        self.value: int | None = None
        self.count = 0

    def write(self, value: int) -> None:
        if value == self.value:
            self.count += 1
            return
        if self.count > 0:
            self.encoder.var_uint(self.count - 1)
        self.count = 1
        self.encoder.uint8(value)
        self.value = value

    def to_bytes(self) -> bytes:
        return self.encoder.to_bytes()


class _UintOptRleDecoder:
    """Unsigned values; a negative sign (-0 for 0) marks a run, whose count follows."""

    def __init__(self, data: bytes) -> None:
        self.decoder = Decoder(data)
        self.value = 0
        self.count = 0

    def read(self) -> int:
        if self.count == 0:
            self.value, run = self.decoder.signed_var_int()
            self.count = self.decoder.var_uint() + 2 if run else 1
        self.count -= 1
        return self.value


class _RunEncoder:
    """An encoder that holds back its current run until the next value or the end."""

    def __init__(self) -> None:
        self.encoder = Encoder()
        self.value = 0
        self.count = 0

    def _flush(self) -> None:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        self._flush()
        self.count = 0
        return self.encoder.to_bytes()


class _UintOptRleEncoder(_RunEncoder):
    def write(self, value: int) -> None:
        if value == self.value:
            self.count += 1
            return
        self._flush()
        self.count = 1
        self.value = value

    def _flush(self) -> None:
        if self.count == 1:
            self.encoder.var_int(self.value)
        elif self.count > 1:
            self.encoder.var_int(-self.value, negative_zero=True)
            self.encoder.var_uint(self.count - 2)


class _IntDiffOptRleDecoder:
    """Differences between successive values; the lowest bit marks a run."""

    def __init__(self, data: bytes) -> None:
        self.decoder = Decoder(data)
        self.value = 0
        self.diff = 0
        self.count = 0

    def read(self) -> int:
        if self.count == 0:
            encoded = self.decoder.var_int()
            self.diff = encoded >> 1  # floor division, as lib0's Math.floor(diff / 2)
            self.count = self.decoder.var_uint() + 2 if encoded & 1 else 1
        self.value += self.diff
        self.count -= 1
        return self.value


class _IntDiffOptRleEncoder(_RunEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.diff = 0

    def write(self, value: int) -> None:
        if self.count > 0 and value - self.value == self.diff:
            self.value = value
            self.count += 1
            return
        self._flush()
        self.count = 1
        self.diff = value - self.value
        self.value = value

    def _flush(self) -> None:
        if self.count > 0:
            self.encoder.var_int(self.diff * 2 + (0 if self.count == 1 else 1))
            if self.count > 1:
                self.encoder.var_uint(self.count - 2)


class _StringDecoder:
    """All strings as one UTF-8 string, then their lengths in UTF-16 code units."""

    def __init__(self, data: bytes) -> None:
        self.lengths = _UintOptRleDecoder(data)
        text = self.lengths.decoder.var_string()
        self.units = text.encode("utf-16-le", "surrogatepass")
        self.pos = 0

    def read(self) -> str:
        end = self.pos + 2 * self.lengths.read()
        if end > len(self.units):
            raise Lib0Error("a string length runs past the strings")
        text = self.units[self.pos : end].decode("utf-16-le", "surrogatepass")
        self.pos = end
        return text


class _StringEncoder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.lengths = _UintOptRleEncoder()

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.lengths.write(len(text.encode("utf-16-le", "surrogatepass")) // 2)

    def to_bytes(self) -> bytes:
        out = Encoder()
        out.var_string(_well_formed("".join(self.parts)))
        out.raw(self.lengths.to_bytes())
        return out.to_bytes()


def _clock(value: int) -> int:
    if value < 0:
        raise Lib0Error("a negative clock")
    return value


def _well_formed(text: str) -> str:
    """Lone surrogates as U+FFFD, as JavaScript's TextEncoder writes them."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _json_text(value: Any) -> str:
    """``JSON.stringify(value)`` for the values an embed or a format holds."""
    if value is UNDEFINED or isinstance(value, bytes):
        raise Lib0Error("a value JSON cannot hold")
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise Lib0Error(f"a value JSON cannot hold: {error}") from None


def _integral_floats(value: Any) -> Any:
    """JSON's numbers as JavaScript holds them: 2.0 is the integer 2 (so lib0
    writes it as a varInt)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value) if abs(value) <= _BITS31 else value
    if isinstance(value, list):
        return [_integral_floats(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral_floats(item) for key, item in value.items()}
    return value
