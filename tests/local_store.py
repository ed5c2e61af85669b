"""Stand-ins for the external blob stores, run locally for the tests that use them:
moto's S3 server, Azurite's Blob service."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

AZURITE = Path(__file__).resolve().parent / "e2e" / "node_modules" / ".bin" / "azurite-blob"
#: Azurite's fixed development account (its documented well-known key).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")
START_SECONDS = 30


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
