"""Blob bytes in an S3-compatible bucket (AWS S3, MinIO, Ceph, …), one object per blob.

The key is ``<prefix><db>/<blobId>``. boto3 talks HTTP through urllib3,
whose sockets gevent has patched in the server, so a transfer lets the worker
serve other requests meanwhile; transfers run in the calling greenlet
(``use_threads=False``), parts of a large upload one after the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from dxc.config import S3Settings

#: Bytes per piece of a download passed on to the client.
READ_CHUNK = 256 * 1024


class StoreUnavailable(RuntimeError):
    """The bucket did not do what was asked (unreachable, refused, missing)."""


@contextmanager
def _unavailable_on_error() -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise StoreUnavailable(f"the blob bucket failed: {error}") from None


class S3Content:
    def __init__(self, settings: S3Settings, client: Any = None) -> None:
        import boto3  # only installations with a bucket pay for importing boto3
        from boto3.s3.transfer import TransferConfig

        self.settings = settings
        self.client = client or boto3.client(
            "s3", endpoint_url=settings.endpoint_url, region_name=settings.region
        )
        self._transfer = TransferConfig(use_threads=False)

    def key(self, db_id: str, blob_id: str) -> str:
        return f"{self.settings.prefix}{db_id}/{blob_id}"

    def put(self, db_id: str, blob_id: str, source: IO[bytes], content_type: str) -> None:
        with _unavailable_on_error():
            self.client.upload_fileobj(
                source, self.settings.bucket, self.key(db_id, blob_id),
                ExtraArgs={"ContentType": content_type}, Config=self._transfer,
            )

    def read(self, db_id: str, blob_id: str) -> Iterator[bytes]:
        """The object's bytes in pieces; opened here, so that a failure comes before
        an answer starts."""
        with _unavailable_on_error():
            answer = self.client.get_object(
                Bucket=self.settings.bucket, Key=self.key(db_id, blob_id)
            )
        return _pieces(answer["Body"])

    def delete(self, db_id: str, blob_id: str) -> None:
        """Delete the object; deleting one that is not there is no error (S3's rule)."""
        with _unavailable_on_error():
            self.client.delete_object(Bucket=self.settings.bucket, Key=self.key(db_id, blob_id))


def _pieces(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(READ_CHUNK)
    finally:
        body.close()
