"""Blob bytes outside the database: what every such store does, and what they share.

A store keeps one object per blob, named ``<prefix><db>/<blobId>``
(:mod:`dxc.storage.blob_s3`, :mod:`dxc.storage.blob_azure`). Every failure
of the service behind it (unreachable, refused, missing container or object)
comes out as :class:`StoreUnavailable`, which the blob endpoints answer with
503 and Retry-After; a download is opened before its answer starts, so that
failure comes before any byte.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, ClassVar

#: Bytes per piece of a download passed on to the client.
READ_CHUNK = 256 * 1024


class StoreUnavailable(RuntimeError):
    """The store did not do what was asked (unreachable, refused, missing)."""


class ExternalStore(ABC):
    """One blob store outside the shard databases; subclasses speak its protocol."""

    #: What ``blobs.location`` holds for a blob kept in this kind of store.
    location: ClassVar[str]
    #: Shown in errors: "bucket", "container".
    noun: ClassVar[str]

    def __init__(self, prefix: str, errors: tuple[type[BaseException], ...]) -> None:
        self.prefix = prefix
        self._errors = errors

    def key(self, db_id: str, blob_id: str) -> str:
        return f"{self.prefix}{db_id}/{blob_id}"

    def put(self, db_id: str, blob_id: str, source: IO[bytes], content_type: str) -> None:
        with self._unavailable_on_error():
            self._put(self.key(db_id, blob_id), source, content_type)

    def read(self, db_id: str, blob_id: str) -> Iterator[bytes]:
        """The object's bytes in pieces; opened here, so that a failure comes before
        an answer starts."""
        with self._unavailable_on_error():
            return self._open(self.key(db_id, blob_id))

    def delete(self, db_id: str, blob_id: str) -> None:
        """Delete the object; deleting one that is not there is no error."""
        with self._unavailable_on_error():
            self._delete(self.key(db_id, blob_id))

    @contextmanager
    def _unavailable_on_error(self) -> Iterator[None]:
        try:
            yield
        except self._errors as error:
            # The first line: Azure's errors go on with the service's whole XML answer.
            summary = str(error).strip().split("\n", 1)[0]
            raise StoreUnavailable(f"the blob {self.noun} failed: {summary}") from None

    @abstractmethod
    def _put(self, key: str, source: IO[bytes], content_type: str) -> None: ...

    @abstractmethod
    def _open(self, key: str) -> Iterator[bytes]:
        """Start reading ``key`` (the first request happens here); its pieces."""

    @abstractmethod
    def _delete(self, key: str) -> None: ...
