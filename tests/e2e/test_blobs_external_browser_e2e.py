"""tests/e2e/test_blobs_browser_e2e.py's scenario with the bytes in an external store run
locally, an S3 bucket (moto's server) and an Azure Blob container (Azurite): the gunicorn +
gevent server talks to the store through boto3 or azure-storage-blob."""

from __future__ import annotations

import pytest

from tests.e2e.test_blobs_browser_e2e import offload_sync_and_read_back, page_port  # noqa: F401
from tests.local_store import PREFIX, Store, azurite_endpoint, s3_endpoint, store  # noqa: F401


@pytest.fixture
def server_env(store: Store) -> dict[str, str]:  # noqa: F811
    return {"REDIS_URL": "", **store.environment()}


def test_blobs_in_a_store_reach_another_device(server, page_port, store):  # noqa: F811
    value = offload_sync_and_read_back(server, page_port)
    keys = set(store.keys())
    db_id = next(iter(keys)).removeprefix(PREFIX).split("/")[0]
    # Both refs have their object; the writer may have uploaded more than once (a sync
    # the addon starts by itself after the write, and the test's own: orphans to collect).
    pic, text = (f"{PREFIX}{db_id}/{value[name]['ref'][2:]}" for name in ("pic", "text"))
    assert {pic, text} <= keys
    assert store.size(pic) == value["pic"]["size"]
