"""The external blob stores for the tests, each run locally: moto's S3 server, Azurite's
Blob service; and the ``store`` fixture, one of them (an empty bucket or container)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from azure.storage.blob import BlobServiceClient

from dxc.config import AzureSettings, S3Settings
from dxc.storage.blob_azure import IN_AZURE
from dxc.storage.blob_s3 import IN_S3
from tests.conftest import free_port

AZURITE = Path(__file__).resolve().parent / "e2e" / "node_modules" / ".bin" / "azurite-blob"
#: Azurite's fixed development account (its documented well-known key).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")
START_SECONDS = 30
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                  "AWS_DEFAULT_REGION": "us-east-1"}
#: Prepended to every object's key by the servers under test.
PREFIX = "test/"


@contextmanager
def serving(command: list[str], url: str, name: str) -> Iterator[str]:
    """Run ``command`` until the block ends; ``url`` once it answers HTTP."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # Azurite waits for idle keep-alive connections
            process.kill()
            process.wait()


def azurite_command(port: int) -> list[str]:
    """Azurite's Blob service on ``port``, kept in memory (skips without Node or npm ci)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Azure blob tests run Azurite (Node 20+)")
    if not AZURITE.exists():
        pytest.skip("tests/e2e/node_modules is missing Azurite: run `npm ci` in tests/e2e")
    return [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--inMemoryPersistence", "--skipApiVersionCheck", "--silent"]


def azurite_connection_string(endpoint: str) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free port, for one test module."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with serving(command, f"http://127.0.0.1:{port}", "moto's server") as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def azurite_endpoint() -> Iterator[str]:
    """Azurite's Blob service on a free port (its account's URL), for one test module."""
    port = free_port()
    with serving(azurite_command(port), f"http://127.0.0.1:{port}", "Azurite") as url:
        yield f"{url}/{AZURITE_ACCOUNT}"


class Store(ABC):
    """One store as the test sees it, beside the server: its objects, and a way to break it."""

    location: str

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The app's settings that point it at this store."""

    @abstractmethod
    def keys(self) -> list[str]: ...

    @abstractmethod
    def environment(self) -> dict[str, str]:
        """The server's environment variables that point it at this store."""

    @abstractmethod
    def content_type(self, key: str) -> str: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def remove(self, key: str) -> None: ...

    @abstractmethod
    def break_down(self) -> None:
        """Delete the bucket or container: every write fails from now on."""


class S3Bucket(Store):
    location = IN_S3

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.client = boto3.client("s3", endpoint_url=endpoint)
        self.name = f"dxc-blobs-{secrets.token_hex(4)}"
        self.client.create_bucket(Bucket=self.name)

    def settings(self) -> dict[str, Any]:
        return {"blob_s3": S3Settings(self.name, endpoint_url=self.endpoint, prefix=PREFIX)}

    def keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name).get("Contents", [])
        return [entry["Key"] for entry in listed]

    def environment(self) -> dict[str, str]:
        return {"DXC_BLOB_S3_BUCKET": self.name, "DXC_BLOB_S3_ENDPOINT": self.endpoint,
                "DXC_BLOB_S3_PREFIX": PREFIX, **S3_CREDENTIALS}

    def content_type(self, key: str) -> str:
        return self.client.head_object(Bucket=self.name, Key=key)["ContentType"]

    def size(self, key: str) -> int:
        return self.client.head_object(Bucket=self.name, Key=key)["ContentLength"]

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)

    def break_down(self) -> None:
        self.client.delete_bucket(Bucket=self.name)


class AzureContainer(Store):
    location = IN_AZURE

    def __init__(self, endpoint: str) -> None:
        self.connection_string = azurite_connection_string(endpoint)
        self.name = f"dxc-blobs-{secrets.token_hex(4)}"
        service = BlobServiceClient.from_connection_string(self.connection_string)
        self.container = service.create_container(self.name)

    def settings(self) -> dict[str, Any]:
        return {"blob_azure": AzureSettings(self.name, self.connection_string, prefix=PREFIX)}

    def keys(self) -> list[str]:
        return list(self.container.list_blob_names())

    def environment(self) -> dict[str, str]:
        return {"DXC_BLOB_AZURE_CONTAINER": self.name, "DXC_BLOB_AZURE_PREFIX": PREFIX,
                "DXC_BLOB_AZURE_CONNECTION_STRING": self.connection_string}

    def content_type(self, key: str) -> str:
        return self._properties(key).content_settings.content_type

    def size(self, key: str) -> int:
        return self._properties(key).size

    def _properties(self, key: str):  # type: ignore[no-untyped-def]
        return self.container.get_blob_client(key).get_blob_properties()

    def remove(self, key: str) -> None:
        self.container.delete_blob(key)

    def break_down(self) -> None:
        self.container.delete_container()


@pytest.fixture(params=["s3", "azure"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Store:
    """An empty bucket or container; its server starts with the first test that needs it."""
    if request.param == "s3":
        for name, value in S3_CREDENTIALS.items():
            monkeypatch.setenv(name, value)
        return S3Bucket(request.getfixturevalue("s3_endpoint"))
    return AzureContainer(request.getfixturevalue("azurite_endpoint"))
