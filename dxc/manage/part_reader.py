"""Exact reads over a streamed binary part of an export zip (``blobs.dcbl``, ``yjs.dcyj``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

from dxc.errors import Invalid


class PartReader:
    """Reads ``chunks`` (a request body) in exact pieces; a body that ends in
    the middle of one is :class:`~dxc.errors.Invalid`, naming ``part``."""

    def __init__(self, chunks: Iterable[bytes], part: str, record: str) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self._truncated = f"{part} ends in the middle of a {record}"

    def read(self, size: int, at_end_ok: bool = False) -> bytes:
        while len(self._buffer) < size:
            more = next(self._chunks, None)
            if more is None:
                if at_end_ok and not self._buffer:
                    return b""
                raise Invalid(self._truncated)
            self._buffer += more
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read_up_to(self, size: int) -> bytes:
        while len(self._buffer) < size and (more := next(self._chunks, None)) is not None:
            self._buffer += more
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def at_end(self) -> bool:
        while not self._buffer:
            more = next(self._chunks, None)
            if more is None:
                return True
            self._buffer = more
        return False

    def copy(self, target: IO[bytes], size: int) -> None:
        while size:
            if not self._buffer:
                more = next(self._chunks, None)
                if more is None:
                    raise Invalid(self._truncated)
                self._buffer = more
            piece, self._buffer = self._buffer[:size], self._buffer[size:]
            target.write(piece)
            size -= len(piece)
