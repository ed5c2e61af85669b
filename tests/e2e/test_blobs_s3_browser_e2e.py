"""tests/e2e/test_blobs_browser_e2e.py's scenario with the bytes in an S3 bucket (moto's
server, run locally): the gunicorn + gevent server talks to the bucket through boto3."""

from __future__ import annotations

import secrets

import boto3
import pytest

from tests.e2e.test_blobs_browser_e2e import offload_sync_and_read_back, page_port  # noqa: F401
from tests.local_store import s3_endpoint  # noqa: F401

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def bucket(s3_endpoint: str) -> str:  # noqa: F811
    name = f"dxc-e2e-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1",
                 ).create_bucket(Bucket=name)
    return name


@pytest.fixture
def server_env(s3_endpoint: str, bucket: str) -> dict[str, str]:  # noqa: F811
    return {"REDIS_URL": "", "DXC_BLOB_S3_BUCKET": bucket, "DXC_BLOB_S3_ENDPOINT": s3_endpoint,
            **CREDENTIALS}


def test_blobs_in_a_bucket_reach_another_device(server, page_port, s3_endpoint, bucket):  # noqa: F811
    value = offload_sync_and_read_back(server, page_port)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    keys = {entry["Key"] for entry in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    db_id = next(iter(keys)).split("/")[0]
    # Both refs have their object; the writer may have uploaded more than once (a sync
    # the addon starts by itself after the write, and the test's own: orphans to collect).
    assert {f"{db_id}/{value[name]['ref'][2:]}" for name in ("pic", "text")} <= keys
    assert s3.head_object(Bucket=bucket, Key=f"{db_id}/{value['pic']['ref'][2:]}")[
        "ContentLength"] == value["pic"]["size"]
