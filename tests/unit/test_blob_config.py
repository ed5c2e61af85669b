"""The blob settings (docs/blobs.md): limits, and the S3 bucket or Azure container only
when named."""

from __future__ import annotations

import pytest

from dxc.config import AzureSettings, ConfigError, S3Settings, load_settings

AZURE = ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;"
         "EndpointSuffix=core.windows.net")


def settings(tmp_path, **environ: str):
    return load_settings({"DXC_SECRET": "s" * 20, **environ}, instance_path=tmp_path)


def test_defaults_keep_blobs_in_the_database(tmp_path):
    result = settings(tmp_path)
    assert result.blob_s3 is None and result.blob_azure is None
    assert result.max_blob_bytes == 32 * 1024 * 1024 and result.blob_orphan_grace == 86400


def test_a_bucket_with_endpoint_region_and_prefix(tmp_path):
    result = settings(
        tmp_path, DXC_BLOB_S3_BUCKET=" blobs ", DXC_BLOB_S3_ENDPOINT="http://minio:9000",
        DXC_BLOB_S3_REGION="eu-north-1", DXC_BLOB_S3_PREFIX="dxc/", DXC_MAX_BLOB_BYTES="1000",
    )
    assert result.blob_s3 == S3Settings("blobs", "http://minio:9000", "eu-north-1", "dxc/")
    assert result.max_blob_bytes == 1000


def test_a_container_with_connection_string_and_prefix(tmp_path):
    result = settings(tmp_path, DXC_BLOB_AZURE_CONTAINER=" blobs ",
                      DXC_BLOB_AZURE_CONNECTION_STRING=AZURE, DXC_BLOB_AZURE_PREFIX="dxc/")
    assert result.blob_azure == AzureSettings("blobs", AZURE, "dxc/")
    assert "AccountKey" not in repr(result), "the account key never shows in a repr"


def test_the_sdks_own_connection_string_variable_serves_too(tmp_path):
    result = settings(tmp_path, DXC_BLOB_AZURE_CONTAINER="b", AZURE_STORAGE_CONNECTION_STRING=AZURE)
    assert result.blob_azure == AzureSettings("b", AZURE)


@pytest.mark.parametrize(("environ", "named"), [
    ({"DXC_BLOB_AZURE_CONNECTION_STRING": AZURE}, "DXC_BLOB_AZURE_CONTAINER"),
    ({"DXC_BLOB_AZURE_CONTAINER": "b"}, "DXC_BLOB_AZURE_CONNECTION_STRING"),
    ({"DXC_BLOB_AZURE_CONTAINER": "b", "DXC_BLOB_AZURE_CONNECTION_STRING": "secret"},
     "DXC_BLOB_AZURE_CONNECTION_STRING"),
    ({"DXC_BLOB_AZURE_CONTAINER": "b", "DXC_BLOB_AZURE_CONNECTION_STRING": AZURE,
      "DXC_BLOB_S3_BUCKET": "b"}, "both set"),
    ({"DXC_BLOB_S3_ENDPOINT": "http://minio:9000"}, "DXC_BLOB_S3_BUCKET"),
    ({"DXC_BLOB_S3_BUCKET": "b", "DXC_BLOB_S3_ENDPOINT": "minio:9000"}, "DXC_BLOB_S3_ENDPOINT"),
    ({"DXC_MAX_BLOB_BYTES": "-1"}, "DXC_MAX_BLOB_BYTES"),
    ({"DXC_BLOB_ORPHAN_GRACE": "soon"}, "DXC_BLOB_ORPHAN_GRACE"),
])
def test_bad_settings_are_named(tmp_path, environ, named):
    with pytest.raises(ConfigError, match=named):
        settings(tmp_path, **environ)


def test_a_malformed_connection_string_is_never_echoed(tmp_path):
    with pytest.raises(ConfigError) as raised:
        settings(tmp_path, DXC_BLOB_AZURE_CONTAINER="b",
                 DXC_BLOB_AZURE_CONNECTION_STRING="AccountKey:hunter2")
    assert "hunter2" not in str(raised.value)
