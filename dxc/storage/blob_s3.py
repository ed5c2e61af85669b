"""Blob bytes in an S3-compatible bucket (AWS S3, MinIO, Ceph, …), one object per blob.

boto3 talks HTTP through urllib3, whose sockets gevent has patched in the
server, so a transfer lets the worker serve other requests meanwhile;
transfers run in the calling greenlet (``use_threads=False``), parts of a
large upload one after the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from dxc.config import S3Settings
from dxc.storage.blob_store import READ_CHUNK, ExternalStore

IN_S3 = "s3"


class S3Content(ExternalStore):
    location = IN_S3
    noun = "bucket"

    def __init__(self, settings: S3Settings, client: Any = None) -> None:
        import boto3  # only installations with a bucket pay for importing boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        super().__init__(settings.prefix, (BotoCoreError, ClientError))
        self.bucket = settings.bucket
        self.client = client or boto3.client(
            "s3", endpoint_url=settings.endpoint_url, region_name=settings.region
        )
        self._transfer = TransferConfig(use_threads=False)

    def _put(self, key: str, source: IO[bytes], content_type: str) -> None:
        self.client.upload_fileobj(
            source, self.bucket, key,
            ExtraArgs={"ContentType": content_type}, Config=self._transfer,
        )

    def _open(self, key: str) -> Iterator[bytes]:
        return _pieces(self.client.get_object(Bucket=self.bucket, Key=key)["Body"])

    def _delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)  # S3: no error if missing


def _pieces(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(READ_CHUNK)
    finally:
        body.close()
