"""The shard migration of the access index: schema as declared, backfill from stored rows."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert, select

from dxc import tson
from dxc.storage import schema
from dxc.storage.migrate import alembic_config, upgrade


def _upgrade_to(engine, revision: str) -> None:
    config = alembic_config("shard")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _object(key: str, tbl: str, realm: str, owner: str, value: dict) -> dict:
    return {
        "db_id": "zdb", "tbl": tbl, "key": key, "realm_id": realm, "owner": owner,
        "rev": 1, "deleted": False, "value": tson.dumps(value),
    }


def test_access_index_is_backfilled_and_matches_the_declared_schema(blank_database_url):
    engine = create_engine(blank_database_url)
    _upgrade_to(engine, "shard_0001")
    accepted = tson.Date("2024-01-01T00:00:00.000Z")
    later = tson.Date("2024-02-01T00:00:00.000Z")
    rows = [
        _object("rlmA", "realms", "rlmA", "ann", {"realmId": "rlmA", "owner": "ann"}),
        _object("mmb1", "members", "rlmA", "ann", {"userId": "ann", "accepted": accepted}),
        _object("mmb2", "members", "rlmA", "ann", {"email": " Ben@X.test", "roles": ["doer"]}),
        _object("mmb3", "members", "rlmA", "ann",
                {"userId": "cy", "accepted": accepted, "rejected": later}),
    ]
    with engine.begin() as connection:
        connection.execute(insert(schema.objects), rows)
    upgrade(engine, "shard")
    with engine.connect() as connection:
        realms = connection.execute(select(schema.access_realms)).all()
        members = {
            row.member_id: row for row in connection.execute(select(schema.access_members))
        }
        context = MigrationContext.configure(
            connection, opts={"version_table": "alembic_version_shard"}
        )
        differences = compare_metadata(context, schema.shard_metadata)
    engine.dispose()
    assert [(r.realm_id, r.owner) for r in realms] == [("rlmA", "ann")]
    assert (members["mmb1"].user_id, members["mmb1"].state) == ("ann", "active")
    assert (members["mmb2"].email, members["mmb2"].state) == ("ben@x.test", "pending")
    assert members["mmb2"].roles == '["doer"]'
    assert members["mmb3"].state == "rejected"
    assert differences == [], "the shard migrations differ from dxc/storage/schema.py"

