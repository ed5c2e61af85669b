"""lib0's binary encoding, the part the Y.js messages of the client use.

``varUint`` (LEB128), ``varInt`` (sign in bit 6 of the first byte),
``varString``, ``varUint8Array``, big-endian ``BigUint64`` and ``any``
(lib0's ``writeAny``/``readAny``), byte for byte as lib0 0.2 writes them
(spec auth-and-websocket §5.7). Reading never trusts a length: it raises
:class:`Lib0Error` on anything that does not fit the bytes it has.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from dxc.tson import UNDEFINED

#: lib0 writes integers up to this size as varInt, others as floats.
_BITS31 = 2**31 - 1
#: The deepest nesting ``any`` reads (a key is a string or a short array).
MAX_DEPTH = 32


class Lib0Error(ValueError):
    """The bytes are not what lib0 would have written."""


class Encoder:
    def __init__(self) -> None:
        self._parts = bytearray()

    def to_bytes(self) -> bytes:
        return bytes(self._parts)

    def uint8(self, value: int) -> None:
        self._parts.append(value)

    def var_uint(self, value: int) -> None:
        while value > 0x7F:
            self._parts.append(0x80 | (value & 0x7F))
            value >>= 7
        self._parts.append(value)

    def var_int(self, value: int, negative_zero: bool = False) -> None:
        """``negative_zero`` writes 0 with its sign bit set (JavaScript's -0),
        which lib0's run-length encoders use as a mark."""
        negative = value < 0 or (value == 0 and negative_zero)
        value = abs(value)
        first = (0x80 if value > 0x3F else 0) | (0x40 if negative else 0) | (value & 0x3F)
        self._parts.append(first)
        value >>= 6
        while value > 0:
            self._parts.append((0x80 if value > 0x7F else 0) | (value & 0x7F))
            value >>= 7

    def var_string(self, text: str) -> None:
        self.var_uint8_array(text.encode("utf-8", "replace"))

    def var_uint8_array(self, data: bytes) -> None:
        self.var_uint(len(data))
        self._parts += data

    def big_uint64(self, value: int) -> None:
        self._parts += struct.pack(">Q", value)

    def raw(self, data: bytes) -> None:
        """Bytes as they are, with no length in front."""
        self._parts += data

    def any(self, value: Any) -> None:
        if value is UNDEFINED:
            self.uint8(127)
        elif value is None:
            self.uint8(126)
        elif value is True or value is False:
            self.uint8(120 if value else 121)
        elif isinstance(value, int) and abs(value) <= _BITS31:
            self.uint8(125)
            self.var_int(value)
        elif isinstance(value, int | float) and _is_float32(float(value)):
            self.uint8(124)
            self._parts += struct.pack(">f", float(value))
        elif isinstance(value, int | float):
            self.uint8(123)
            self._parts += struct.pack(">d", float(value))
        elif isinstance(value, str):
            self.uint8(119)
            self.var_string(value)
        elif isinstance(value, bytes | bytearray):
            self.uint8(116)
            self.var_uint8_array(bytes(value))
        elif isinstance(value, list | tuple):
            self.uint8(117)
            self.var_uint(len(value))
            for item in value:
                self.any(item)
        elif isinstance(value, dict):
            self.uint8(118)
            self.var_uint(len(value))
            for key, item in value.items():
                self.var_string(str(key))
                self.any(item)
        else:
            raise TypeError(f"lib0 cannot encode {type(value).__name__}")


class Decoder:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def has_content(self) -> bool:
        return self.pos < len(self.data)

    def uint8(self) -> int:
        if self.pos >= len(self.data):
            raise Lib0Error("unexpected end of data")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def _take(self, size: int) -> bytes:
        if size > len(self.data) - self.pos:
            raise Lib0Error("a length runs past the end of the data")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def var_uint(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self.uint8()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 53:
                raise Lib0Error("varUint larger than a safe integer")

    def var_int(self) -> int:
        magnitude, negative = self.signed_var_int()
        return -magnitude if negative else magnitude

    def signed_var_int(self) -> tuple[int, bool]:
        """A varInt as (magnitude, sign bit): tells JavaScript's -0 from 0."""
        byte = self.uint8()
        value = byte & 0x3F
        negative = bool(byte & 0x40)
        shift = 6
        while byte & 0x80:
            byte = self.uint8()
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift > 60:
                raise Lib0Error("varInt larger than a safe integer")
        return value, negative

    def var_string(self) -> str:
        return self.var_uint8_array().decode("utf-8", "replace")  # as TextDecoder does

    def var_uint8_array(self) -> bytes:
        return self._take(self.var_uint())

    def big_uint64(self) -> int:
        return struct.unpack(">Q", self._take(8))[0]

    def any(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise Lib0Error("value nested too deeply")
        tag = self.uint8()
        if tag == 127:
            return UNDEFINED
        if tag == 126:
            return None
        if tag == 125:
            return self.var_int()
        if tag == 124:
            return _finite(struct.unpack(">f", self._take(4))[0])
        if tag == 123:
            return _finite(struct.unpack(">d", self._take(8))[0])
        if tag == 122:
            return struct.unpack(">q", self._take(8))[0]
        if tag in (120, 121):
            return tag == 120
        if tag == 119:
            return self.var_string()
        if tag == 118:
            return {self.var_string(): self.any(depth + 1) for _ in range(self._count())}
        if tag == 117:
            return [self.any(depth + 1) for _ in range(self._count())]
        if tag == 116:
            return self.var_uint8_array()
        raise Lib0Error(f"unknown lib0 type tag {tag}")

    def _count(self) -> int:
        count = self.var_uint()
        if count > len(self.data) - self.pos:  # every item takes at least one byte
            raise Lib0Error("a count runs past the end of the data")
        return count


def _is_float32(value: float) -> bool:
    """Whether a float32 holds ``value`` exactly (lib0 then writes 4 bytes, not 8)."""
    try:
        return struct.unpack(">f", struct.pack(">f", value))[0] == value
    except OverflowError:
        return False


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise Lib0Error("not a finite number")
    return value
