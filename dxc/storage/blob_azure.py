"""Blob bytes in an Azure Blob Storage container (or Azurite), one block blob per blob.

azure-storage-blob talks HTTP through requests and urllib3, whose sockets
gevent has patched in the server, so a transfer lets the worker serve other
requests meanwhile. Transfers run in the calling greenlet
(``max_concurrency=1``) and never hold more than :data:`PIECE` bytes of a blob:
an upload goes as blocks of that size, a download as ranges of that size.
Retries are few and short, so that a failing account is a quick 503 rather
than a request hanging for a minute (the SDK's default backs off 15 s and more).
The SDK logs every request and answer at INFO; that logger is set to WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import IO

from dxc.config import AzureSettings
from dxc.storage.blob_store import ExternalStore

IN_AZURE = "azure"
#: Bytes per uploaded block and per downloaded range.
PIECE = 1024 * 1024
_SDK_REQUEST_LOG = "azure.core.pipeline.policies.http_logging_policy"


class AzureContent(ExternalStore):
    location = IN_AZURE
    noun = "container"

    def __init__(self, settings: AzureSettings) -> None:
        # Only installations with a container pay for importing the SDK.
        from azure.core.exceptions import AzureError
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        super().__init__(settings.prefix, (AzureError,))
        service = BlobServiceClient.from_connection_string(
            settings.connection_string,
            retry_policy=ExponentialRetry(
                initial_backoff=1, increment_base=2, retry_total=2, random_jitter_range=1
            ),
            max_single_put_size=PIECE, max_block_size=PIECE,
            max_single_get_size=PIECE, max_chunk_get_size=PIECE,
        )
        self.container = service.get_container_client(settings.container)
        logging.getLogger(_SDK_REQUEST_LOG).setLevel(logging.WARNING)

    def _put(self, key: str, source: IO[bytes], content_type: str) -> None:
        from azure.storage.blob import ContentSettings

        self.container.upload_blob(
            key, source, content_settings=ContentSettings(content_type=content_type),
            max_concurrency=1,
        )

    def _open(self, key: str) -> Iterator[bytes]:
        return self.container.download_blob(key, max_concurrency=1).chunks()

    def _delete(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.container.delete_blob(key)
        except ResourceNotFoundError as error:
            if error.error_code != "BlobNotFound":  # a missing container is a failure
                raise
            # a missing blob is gone already: as S3 has it, no error
