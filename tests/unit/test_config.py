"""Settings from the environment, as the deployments present them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dxc.config import ConfigError, load_settings, parse_connection_string


def settings(tmp_path: Path, **environ: str):
    return load_settings({"DXC_SECRET": "s" * 20, **environ}, instance_path=tmp_path)


def test_embedded_default_is_sqlite_under_instance(tmp_path):
    result = load_settings({}, instance_path=tmp_path)
    assert result.is_sqlite
    assert result.database_url.database == str((tmp_path / "dxc.sqlite").resolve())
    assert result.public_url == "http://localhost:3000"
    # The generated development secret is kept, so every worker signs alike.
    assert load_settings({}, instance_path=tmp_path).secret == result.secret
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600


def test_azure_keyword_connection_string(tmp_path):
    result = settings(
        tmp_path,
        POSTGRESQLCONNSTR_DEXIE_CLOUD=(
            "Server=myserver.postgres.database.azure.com;Database=dxc;Port=5432;"
            "User Id=admin@myserver;Password=p@ss=word;Ssl Mode=Require;"
        ),
    )
    url = result.database_url
    assert url.drivername == "postgresql+psycopg2"
    assert url.host == "myserver.postgres.database.azure.com"
    assert (url.database, url.port) == ("dxc", 5432)
    assert (url.username, url.password) == ("admin@myserver", "p@ss=word")
    assert url.query["sslmode"] == "require"


def test_url_forms(tmp_path):
    assert parse_connection_string("postgres://u:p@h/d").drivername == "postgresql+psycopg2"
    assert parse_connection_string("sqlite:////tmp/x.sqlite").database == "/tmp/x.sqlite"
    custom = settings(tmp_path, CUSTOMCONNSTR_DEXIE_CLOUD="postgresql://h/db")
    assert custom.database_url.host == "h"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"DEXIE_CLOUD": "mysql://h/d"}, "DEXIE_CLOUD"),
        ({"DEXIE_CLOUD": "Database=d"}, "DEXIE_CLOUD"),
        ({"DEXIE_CLOUD": "Server=h;Database=d;Port=x"}, "Port"),
        ({"DXC_URL": "ftp://x"}, "DXC_URL"),
        ({"PORT": "eighty"}, "PORT"),
        ({"DXC_ACCESS_TOKEN_TTL": "-5"}, "DXC_ACCESS_TOKEN_TTL"),
        ({"DXC_ENV": "staging"}, "DXC_ENV"),
        ({"DXC_SECRET": "short"}, "DXC_SECRET"),
    ],
)
def test_bad_settings_name_themselves(tmp_path, environ, named):
    with pytest.raises(ConfigError, match=named):
        load_settings({"DXC_SECRET": "s" * 20, **environ}, instance_path=tmp_path)


def test_production_requires_a_secret(tmp_path):
    with pytest.raises(ConfigError, match="DXC_SECRET"):
        load_settings({"DXC_ENV": "production"}, instance_path=tmp_path)


def test_public_urls(tmp_path):
    result = settings(tmp_path, DXC_URL="https://sync.example.com/", PORT="8080")
    assert result.service_url == "https://sync.example.com/service"
    assert result.database_url_for("zabc") == "https://sync.example.com/zabc"
