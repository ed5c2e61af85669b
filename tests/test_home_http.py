"""``GET /`` and ``GET /<db>``: what someone who opens these URLs in a browser reads."""

from __future__ import annotations

from dxc.manage import databases


def test_the_root_says_what_the_server_is(app):
    page = app.test_client().get("/")
    assert page.status_code == 200
    body = page.get_json()
    url = app.extensions["dxc"].settings.public_url
    assert body["server"] == "dxc-server" and "Dexie Cloud" in body["about"]
    assert body["health"] == f"{url}/health"


def test_a_database_url_explains_itself(app, services):
    created = databases.create_database(services)
    client = app.test_client()
    for path in (f"/{created.db_id}", f"/{created.db_id}/"):
        page = client.get(path)
        assert page.status_code == 200, path
        body = page.get_json()
        assert body["database"] == created.db_id
        assert body["configure"] == f'db.cloud.configure({{ databaseUrl: "{created.url}" }})'
    unknown = client.get("/znothere1")
    assert unknown.status_code == 404
    assert unknown.get_json()["error"] == "unknown_database"
