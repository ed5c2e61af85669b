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
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
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
    # The URL with its password masked; the whole URL is in ``sealed_url``, encrypted
    # (dxc.storage.shard_urls). Rows from before sealing: the clear URL, no sealed one.
    Column("url", Text, nullable=True),
    Column("sealed_url", Text, nullable=True),
    Column("weight", Integer, nullable=False, default=1),
    Column("created", DateTime(timezone=True), nullable=False),
    # Takes no new databases, neither created nor moved there (``update-shard --read-only``).
    Column("read_only", Boolean, nullable=False, default=False, server_default=false()),
    # Raised by every change (``update-shard``): workers reopen a shard whose version moved.
    Column("version", Integer, nullable=False, default=1, server_default="1"),
)

databases = Table(
    "databases",
    control_metadata,
    Column("id", String(64), primary_key=True),
    Column("shard_id", Integer, ForeignKey("shards.id"), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("deleted", DateTime(timezone=True), nullable=True),
    # The number that keys this database's revisions in revision tokens: the id of
    # the shard its revision counter began on (a move carries the counter along, so
    # tokens stay valid). NULL: ``shard_id``, the database never moved.
    Column("revision_key", Integer, nullable=True),
)

# A move of a database to another shard (``flask dxc move-realms``) that has not
# finished: ``copying`` until the switch, ``switched`` until the old copy is gone.
shard_moves = Table(
    "shard_moves",
    control_metadata,
    Column("db_id", String(64), ForeignKey("databases.id"), primary_key=True),
    Column("from_shard", Integer, ForeignKey("shards.id"), nullable=False),
    Column("to_shard", Integer, ForeignKey("shards.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("started", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
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
    # False while authorized by ``clients/add`` but not yet claimed by its
    # owner through ``clients/connect`` (its secret is minted then).
    Column("verified", Boolean, nullable=False, default=True),
    Column("service_account", Boolean, nullable=False, default=False),
    # Set when the client was rotated: it stops working at this time.
    Column("expires", DateTime(timezone=True), nullable=True),
)

# The browser origins allowed to use a database (``dexie-cloud whitelist``).
origins = Table(
    "origins",
    control_metadata,
    Column("db_id", String(64), ForeignKey("databases.id"), primary_key=True),
    Column("origin", String(512), primary_key=True),
    Column("created", DateTime(timezone=True), nullable=False),
)

# Customised e-mail and web templates (``dexie-cloud templates push``);
# a template without a row here is the built-in default.
templates = Table(
    "templates",
    control_metadata,
    Column("db_id", String(64), ForeignKey("databases.id"), primary_key=True),
    Column("path", String(255), primary_key=True),  # e.g. email-templates/otp-subject.handlebars
    Column("content", Text, nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
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
    # Set on every change of the row, logins included (``DBUserJsonModel.updated``).
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("valid_until", DateTime(timezone=True), nullable=True),
    Column("eval_days_left", Integer, nullable=True),
    # When the user was deactivated (soft-deleted): no more tokens; NULL: active.
    Column("deactivated", DateTime(timezone=True), nullable=True),
    # Custom user data beyond displayName and email, as TSON-encoded JSON text.
    Column("data", Text, nullable=True),
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
    # The API client that minted it by impersonation; refresh checks it still exists.
    Column("client_id", String(64), nullable=True),
    Column("scopes", Text, nullable=True),  # space separated; NULL: ACCESS_DB
    Index(None, "db_id", "user_id"),
)

# Signed refresh requests already answered, so that none is answered twice: a
# signature over (refresh token, time stamp) stays valid while the time stamp is
# within the accepted clock skew, until ``expires``.
used_refresh_stamps = Table(
    "used_refresh_stamps",
    control_metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the refresh token
    Column("time_stamp", BigInteger, primary_key=True),  # the client's, in milliseconds
    Column("expires", DateTime(timezone=True), nullable=False, index=True),
)

# One-time passwords of e-mail logins, until used or expired.
otps = Table(
    "otps",
    control_metadata,
    Column("otp_id", String(64), primary_key=True),
    Column("audience", String(64), nullable=False),  # a database id, or "service"
    Column("email", String(320), nullable=False),
    Column("code_hash", String(64), nullable=False),  # HMAC-SHA256, never the code
    Column("scopes", Text, nullable=False),  # space separated
    Column("intent", String(16), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False, index=True),
)

# One row per rate-limited event (an OTP request), shared by all worker processes.
rate_events = Table(
    "rate_events",
    control_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("bucket", String(64), nullable=False),  # a digest of what is limited
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Index(None, "bucket", "at"),
)

# Where mails go: a web-hook that receives them as signed JSON.
email_channels = Table(
    "email_channels",
    control_metadata,
    Column("name", String(32), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),  # encrypted with a key derived from DXC_SECRET
    Column("updated", DateTime(timezone=True), nullable=False),
)

# OAuth / OpenID Connect providers a database offers (``flask dxc oauth add``).
oauth_providers = Table(
    "oauth_providers",
    control_metadata,
    Column("db_id", String(64), ForeignKey("databases.id"), primary_key=True),
    Column("name", String(64), primary_key=True),  # in URLs: /oauth/login/<name>
    Column("type", String(16), nullable=False),  # google, github, microsoft, apple, custom-oauth2
    Column("client_id", Text, nullable=False),
    Column("secret", Text, nullable=False),  # encrypted with a key derived from DXC_SECRET
    Column("issuer", Text, nullable=True),  # OpenID Connect issuer; NULL: plain OAuth2 (GitHub)
    Column("display_name", String(255), nullable=True),
    Column("icon_url", Text, nullable=True),
    Column("scopes", Text, nullable=False),  # space separated, as sent to the provider
    Column("updated", DateTime(timezone=True), nullable=False),
)

# Login choices of a database besides its providers; no row: the defaults.
login_settings = Table(
    "login_settings",
    control_metadata,
    Column("db_id", String(64), ForeignKey("databases.id"), primary_key=True),
    Column("otp_enabled", Boolean, nullable=False),
)

# Logins that went to a provider and have not come back yet (state, PKCE, nonce).
oauth_states = Table(
    "oauth_states",
    control_metadata,
    Column("state_hash", String(64), primary_key=True),  # SHA-256 of the state
    Column("db_id", String(64), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),  # the app's page, checked when stored
    Column("code_verifier", String(128), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False, index=True),
)

# Single-use codes handed to the app in ``dxc-auth``, exchanged at ``/token``.
oauth_codes = Table(
    "oauth_codes",
    control_metadata,
    Column("code_hash", String(64), primary_key=True),  # SHA-256 of the code
    Column("db_id", String(64), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("email", String(320), nullable=False),  # verified by the provider, lower-cased
    Column("name", String(320), nullable=True),
    Column("expires", DateTime(timezone=True), nullable=False, index=True),
)

# A database this installation copies from another one (``flask dxc start-replication``):
# where from, with which API client (secret sealed with a key derived from DXC_SECRET),
# how far (``checkpoint``: every source revision up to it is applied here), and which
# process runs the copy now (a lease, so one job per database even across restarts).
replications = Table(
    "replications",
    control_metadata,
    Column("db_id", String(64), ForeignKey("databases.id"), primary_key=True),
    Column("source_url", Text, nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("sealed_secret", Text, nullable=False),
    Column("state", String(16), nullable=False),  # copying, tailing, stopped
    Column("checkpoint", BigInteger, nullable=False),
    Column("source_shard", Integer, nullable=True),
    Column("source_head", BigInteger, nullable=True),
    Column("source_counts", Text, nullable=True),  # JSON {table: live objects}
    Column("copied", BigInteger, nullable=False),  # rows applied so far
    Column("started", DateTime(timezone=True), nullable=False),
    Column("polled", DateTime(timezone=True), nullable=True),  # last answer of the source
    Column("synced", DateTime(timezone=True), nullable=True),  # last time at its head
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("error", Text, nullable=True),
    # When the source stopped and this copy took over (docs/migration.md); NULL: not yet.
    Column("switched", DateTime(timezone=True), nullable=True),
    # The source's access tokens stay valid here until they expire: its issuer, the
    # database id they name (aud), and their HMAC key sealed like the secret.
    Column("token_issuer", Text, nullable=True),
    Column("token_audience", String(64), nullable=True),
    Column("sealed_token_key", Text, nullable=True),
    # Y.js updates up to this source revision are copied (they come apart from the rows).
    Column("y_checkpoint", BigInteger, nullable=False, server_default="0"),
    # Blobs and Y.js documents at the source, as of its last answer.
    Column("source_blobs", BigInteger, nullable=True),
    Column("source_ydocs", BigInteger, nullable=True),
    # The source keeps no revisions (not a dxc-server): each round reads its whole export.
    Column("full_reads", Boolean, nullable=False, server_default=false()),
)

# Databases that moved to another installation: this one forwards their clients there.
redirects = Table(
    "redirects",
    control_metadata,
    Column("db_id", String(64), ForeignKey("databases.id"), primary_key=True),
    Column("target_url", Text, nullable=False),
    Column("final_revision", BigInteger, nullable=False),  # the last write taken here
    Column("created", DateTime(timezone=True), nullable=False),
)

# Requests and open sockets per database, as each worker process counted them
# (``flask dxc stats``, dxc/activity.py). ``minute``: whole minutes since the epoch;
# a worker adds its counts to its own row of the minute every few seconds.
activity = Table(
    "activity",
    control_metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("db_id", String(64), primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("syncs", BigInteger, nullable=False),  # POST /<db>/sync served here
    Column("forwarded", BigInteger, nullable=False),  # requests forwarded (the db moved)
    Index(None, "db_id", "minute"),
)

# The /changes sockets a worker holds now, per database (a gauge): rewritten with each
# flush; a row whose ``heartbeat`` (epoch seconds) is old belongs to a dead worker.
open_sockets = Table(
    "open_sockets",
    control_metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("db_id", String(64), primary_key=True),
    Column("sockets", Integer, nullable=False),  # served here
    Column("relayed", Integer, nullable=False),  # relayed to the database's new home
    Column("heartbeat", BigInteger, nullable=False),
)

# Databases deleted with ``flask dxc delete-db``: their URL answers 410 Gone, or is still
# forwarded to ``target_url`` until ``forward_until``. No foreign key: the database row
# is gone.
retired_databases = Table(
    "retired_databases",
    control_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("retired", DateTime(timezone=True), nullable=False),
    Column("target_url", Text, nullable=True),
    Column("forward_until", DateTime(timezone=True), nullable=True),
)

table_schemas = Table(
    "table_schemas",
    control_metadata,
    Column("db_id", String(64), ForeignKey("databases.id"), primary_key=True),
    Column("tbl", String(255), primary_key=True),
    Column("id_prefix", String(32), nullable=True),
    Column("generated_global_id", Boolean, nullable=False, default=False),
    # The primary key path: "id", "ref", "[a+b]" for a compound key; NULL: unknown.
    Column("key_path", Text, nullable=True),
    UniqueConstraint("db_id", "id_prefix"),
)

# --- shard databases --------------------------------------------------------

revisions = Table(
    "revisions",
    shard_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("rev", BigInteger, nullable=False),
    # No local writes (the database moved away, or is a replica not yet switched over):
    # read with the counter, under its lock, so no write commits after it is set.
    Column("frozen", Boolean, nullable=False, default=False, server_default=false()),
    # The newest revision with a where-clause operation (``consistent_operations``),
    # read with the counter under its lock; NULL when not known (read them all).
    Column("criteria_rev", BigInteger, nullable=True),
    # A random number written anew by every change of the access index
    # (``access_realms``, ``access_members``): who a user stands for is the same
    # while it is, so a process may keep what it read; NULL when not known.
    Column("access_stamp", BigInteger, nullable=True),
    # The newest revision at which an object left a realm (``departures``), read with
    # the counter; NULL when not known (read them all).
    Column("departure_rev", BigInteger, nullable=True),
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
    Index(None, "db_id", "rev"),  # what a replica copies: every row after its checkpoint
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
    # The pushing user: a client identity is the client's choice, not a secret.
    Column("user_id", String(320), primary_key=True, server_default=""),
    Column("client_identity", String(128), primary_key=True),
    Column("txid", String(128), primary_key=True),
    Column("rev", BigInteger, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    # A replica reads those recorded after its checkpoint (docs/migration.md).
    Index(None, "db_id", "rev"),
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
    # The issuer, whose rights a replay acts with; NULL (older rows): never replayed.
    Column("user_id", String(320), nullable=True),
    # The operation as TSON text: {"type", "criteria", "changeSpec"?}.
    Column("operation", Text, nullable=False),
    Index(None, "db_id", "tbl", "rev"),
    # A replica reads those recorded after its checkpoint (docs/migration.md).
    Index(None, "db_id", "rev"),
)

# Y.js document updates (docs/yjs.md): a document is (table, prop, key of its
# parent object); its realm is the parent's, read at every use. ``rev`` is a
# revision of the database's counter (moved on when the parent changes realm),
# ``origin`` the clientIdentity that sent it (not echoed back to it).
y_updates = Table(
    "y_updates",
    shard_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("db_id", String(64), nullable=False),
    Column("tbl", String(255), nullable=False),
    Column("prop", String(255), nullable=False),
    Column("doc_key", Text, nullable=False),
    Column("rev", BigInteger, nullable=False),
    Column("origin", String(128), nullable=True),
    Column("data", LargeBinary, nullable=False),
    Index(None, "db_id", "tbl", "doc_key", "prop", "rev"),
    Index(None, "db_id", "rev"),
)

# The access index, derived from the ``realms`` and ``members`` rows in the
# transaction that writes them: who owns and who belongs to which realm, so
# that realm sets and permission checks are indexed lookups, not scans.
access_realms = Table(
    "access_realms",
    shard_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("realm_id", Text, primary_key=True),
    Column("owner", Text, nullable=True),
    Index(None, "db_id", "owner"),
)

access_members = Table(
    "access_members",
    shard_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("member_id", Text, primary_key=True),  # the key of the members row
    Column("realm_id", Text, nullable=False),
    Column("user_id", Text, nullable=True),
    Column("email", Text, nullable=True),  # trimmed and lower-cased
    Column("state", String(8), nullable=False),  # active, pending or rejected
    Column("permissions", Text, nullable=True),  # JSON DBPermissionSet, normalised
    Column("roles", Text, nullable=True),  # JSON array of role names
    Index(None, "db_id", "realm_id"),
    Index(None, "db_id", "user_id"),
    Index(None, "db_id", "email"),
)

# Offloaded blobs (docs/blobs.md): what was uploaded, by whom, where its bytes
# are; the bytes themselves in chunks here unless an S3 bucket holds them; and
# which objects refer to which blob, noted when an object is written.
blobs = Table(
    "blobs",
    shard_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("blob_id", String(64), primary_key=True),
    Column("uploader", Text, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("location", String(8), nullable=False),  # "db" (blob_chunks), "s3" or "azure"
    Column("created", DateTime(timezone=True), nullable=False),
)

blob_chunks = Table(
    "blob_chunks",
    shard_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("blob_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)

# Only ever added to when an object is written; a row whose object no longer
# holds the ref is ignored when read and goes with its blob.
blob_refs = Table(
    "blob_refs",
    shard_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("blob_id", String(64), primary_key=True),
    Column("tbl", String(255), primary_key=True),
    Column("key", Text, primary_key=True),
)

# A copy of a source that keeps no revisions (docs/migration.md, "A source without
# revisions"): a digest of each object as the source's export last showed it, written
# with the object, so that the next full read applies only what changed there.
source_digests = Table(
    "source_digests",
    shard_metadata,
    Column("db_id", String(64), primary_key=True),
    Column("tbl", String(255), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("digest", LargeBinary, nullable=False),
)
