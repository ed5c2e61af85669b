"""Table definitions for the control database and the shard databases.

The control database knows the installation: shards, logical databases,
users, API clients, refresh tokens and the per-table schema. A shard holds
the synced data of the databases placed on it. Both are migrated by Alembic
(``dxc/storage/migrations``); these definitions are what the migrations
create, and what the code queries.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

control_metadata = MetaData(naming_convention=NAMING)
shard_metadata = MetaData(naming_convention=NAMING)

# --- control database -------------------------------------------------------

shards = Table(
    "shards",
    control_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    # NULL means "the control database itself": the embedded default and the
    # usual single-PostgreSQL deployment keep no second copy of the password.
    Column("url", Text, nullable=True),
    Column("weight", Integer, nullable=False, default=1),
    Column("created", DateTime(timezone=True), nullable=False),
)

databases = Table(
    "databases",
    control_metadata,
    Column("id", String(64), primary_key=True),
    Column("shard_id", Integer, ForeignKey("shards.id"), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("deleted", DateTime(timezone=True), nullable=True),
)

api_clients = Table(
    "api_clients",
    control_metadata,
    Column("client_id", String(64), primary_key=True),
    Column("db_id", String(64), ForeignKey("databases.id"), nullable=False, index=True),
    Column("secret_hash", String(128), nullable=False),
    Column("scopes", Text, nullable=False),  # space separated
    Column("email", String(320), nullable=True),
    Column("created", DateTime(timezone=True), nullable=False),
)

users = Table(
    "users",
    control_metadata,
    Column("db_id", String(64), ForeignKey("databases.id"), primary_key=True),
    Column("user_id", String(320), primary_key=True),
    Column("email", String(320), nullable=True),
    Column("name", String(320), nullable=True),
    Column("user_type", String(16), nullable=False),
    Column("is_demo", Boolean, nullable=False, default=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("last_login", DateTime(timezone=True), nullable=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    control_metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("db_id", String(64), ForeignKey("databases.id"), nullable=False),
    Column("user_id", String(320), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
    Column("revoked", DateTime(timezone=True), nullable=True),
    Index(None, "db_id", "user_id"),
)

table_schemas = Table(
    "table_schemas",
    control_metadata,
    Column("db_id", String(64), ForeignKey("databases.id"), primary_key=True),
    Column("tbl", String(255), primary_key=True),
    Column("id_prefix", String(32), nullable=True),
    Column("generated_global_id", Boolean, nullable=False, default=False),
    UniqueConstraint("db_id", "id_prefix"),
)

# --- shard databases --------------------------------------------------------

revisions = Table(
    "revisions",
    shard_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("rev", BigInteger, nullable=False),
)

objects = Table(
    "objects",
    shard_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("tbl", String(255), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("realm_id", Text, nullable=False),
    Column("owner", Text, nullable=True),
    Column("rev", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    # The object as TSON text, exactly as it is sent to clients.
    Column("value", Text, nullable=True),
    Index(None, "db_id", "realm_id", "rev"),
    Index(None, "db_id", "tbl", "owner"),
)

# An object that moved to another realm leaves a marker in the realm it left,
# so that readers of that realm who cannot see the new one get a delete.
departures = Table(
    "departures",
    shard_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("tbl", String(255), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("realm_id", Text, primary_key=True),
    Column("rev", BigInteger, nullable=False),
    Index(None, "db_id", "realm_id", "rev"),
)

applied_transactions = Table(
    "applied_transactions",
    shard_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("client_identity", String(128), primary_key=True),
    Column("txid", String(128), primary_key=True),
    Column("rev", BigInteger, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

# Criteria-based modify/delete operations, kept to rebase older offline writes.
consistent_operations = Table(
    "consistent_operations",
    shard_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("db_id", String(64), nullable=False),
    Column("rev", BigInteger, nullable=False),
    Column("tbl", String(255), nullable=False),
    Column("client_identity", String(128), nullable=False),
    # The operation as TSON text: {"type", "criteria", "changeSpec"?}.
    Column("operation", Text, nullable=False),
    Index(None, "db_id", "tbl", "rev"),
)
