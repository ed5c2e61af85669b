"""Configuration, read from the environment in one place (12-factor).

Every setting the server understands is parsed here, and a bad or missing one
raises :class:`ConfigError` naming it, so that a misconfigured deployment
fails at start-up instead of at the first request.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url

from dxc.logs import LOG_FORMATS, default_log_format
from dxc.secret_keys import Keyring

#: Where Azure App Service puts a portal connection string named DEXIE_CLOUD.
CONNECTION_STRING_NAMES = (
    "DEXIE_CLOUD",
    "POSTGRESQLCONNSTR_DEXIE_CLOUD",
    "CUSTOMCONNSTR_DEXIE_CLOUD",
    "SQLCONNSTR_DEXIE_CLOUD",
)

ENVIRONMENTS = ("development", "production")
#: ``DXC_CORS_ORIGINS`` entry for pages served from this machine: http(s)://localhost,
#: 127.0.0.1 or [::1], any port. The development default, so a dev server is no open door.
LOOPBACK_ORIGINS = "loopback"


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class S3Settings:
    """An S3-compatible bucket for blob bytes. Credentials come the AWS way
    (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, an instance role),
    never through these settings, so they are never printed with them."""

    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    #: Prepended to ``<db>/<blobId>`` to form an object's key.
    prefix: str = ""


@dataclass(frozen=True)
class AzureSettings:
    """An Azure Blob Storage container for blob bytes. The connection string holds
    the account's key or a SAS: it is a secret, so it is left out of ``repr``."""

    container: str
    connection_string: str = field(repr=False)
    #: Prepended to ``<db>/<blobId>`` to form a blob's name.
    prefix: str = ""


@dataclass(frozen=True)
class Settings:
    """The server's whole configuration."""

    secret: str = field(repr=False)
    public_url: str
    database_url: URL
    #: Previous values of ``DXC_SECRET`` that still open and verify (never in ``repr``).
    old_secrets: tuple[str, ...] = field(default=(), repr=False)
    redis_url: str | None = None
    env: str = "development"
    instance_path: Path = Path("instance")
    max_body_bytes: int = 100 * 1024 * 1024
    #: Synced tables one database may have; more are not registered and not written.
    max_tables: int = 1000
    #: Origins allowed for every database besides each one's whitelist; "*": all,
    #: ``LOOPBACK_ORIGINS``: any page served from this machine.
    cors_origins: tuple[str, ...] = ()
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 90 * 24 * 3600
    refresh_clock_skew: int = 15 * 60
    otp_ttl: int = 10 * 60
    otp_max_attempts: int = 5
    otp_rate_window: int = 15 * 60
    otp_max_per_email: int = 5
    otp_max_per_address: int = 30
    #: Who may create databases through ``/service``; None: any verified e-mail.
    create_db_emails: tuple[str, ...] | None = None
    job_retry_delays: tuple[float, ...] = (5, 30, 120, 600, 1800)
    #: How often a replica asks its source for new writes once it caught up.
    replication_poll_ms: int = 1000
    #: How often a replica reads the whole export of a source that keeps no revisions
    #: (Dexie Cloud limits exports to 25 per 10 minutes).
    replication_full_read_seconds: int = 60
    proxy_hops: int = 0
    #: Days a soft-deleted database keeps working before ``flask dxc purge-deleted`` removes it.
    deleted_db_grace_days: int = 30
    #: The largest import body once decompressed (a gzip bomb stops here with a 413).
    max_import_bytes: int = 256 * 1024 * 1024
    #: ``json`` (one JSON object a line) or ``text``; see docs/operations.md.
    log_format: str = "text"
    #: Bearer token that ``GET /metrics`` requires; None: /metrics is open.
    metrics_token: str | None = None
    #: HTTP Basic password of the RQ dashboard at ``/admin/rq``; None: no dashboard.
    admin_password: str | None = None
    #: Offloaded blobs (docs/blobs.md): the largest upload, how long an unreferenced
    #: blob is kept, and the S3 bucket or Azure container holding the bytes (at most
    #: one of them; neither: the shard database).
    max_blob_bytes: int = 32 * 1024 * 1024
    blob_orphan_grace: int = 24 * 3600
    blob_s3: S3Settings | None = None
    blob_azure: AzureSettings | None = None
    #: Y.js compaction (docs/yjs.md): a document's updates are merged once it has more
    #: than ``y_compact_after``, checked at most every ``y_compact_every`` seconds.
    y_compact_after: int = 100
    y_compact_every: int = 60
    #: Seconds a database move may hold the database's writes (its final catch-up),
    #: and about how long a sync waits for a moving database before a retryable 503.
    move_hold_seconds: int = 5
    #: How often each worker writes its request counts and open sockets (``flask dxc stats``).
    stats_flush_seconds: int = 5

    @property
    def keyring(self) -> Keyring:
        """Derives every sealing and signing key (:mod:`dxc.secret_keys`)."""
        return Keyring(self.secret, self.old_secrets)

    @property
    def service_url(self) -> str:
        """The URL given to ``npx dexie-cloud create --service``."""
        return f"{self.public_url}/service"

    def database_url_for(self, db_id: str) -> str:
        """The ``databaseUrl`` an app passes to ``db.cloud.configure``."""
        return f"{self.public_url}/{db_id}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_backend_name() == "sqlite"


def load_settings(
    environ: Mapping[str, str] | None = None, instance_path: Path | None = None
) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: ``os.environ``)."""
    environ = os.environ if environ is None else environ
    instance_path = Path(environ.get("DXC_INSTANCE_PATH") or instance_path or "instance")
    env = environ.get("DXC_ENV", "development").strip().lower()
    if env not in ENVIRONMENTS:
        raise ConfigError(f"DXC_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    port = _integer(environ, "PORT", 3000)
    blob_s3, blob_azure = _s3_settings(environ), _azure_settings(environ)
    if blob_s3 and blob_azure:
        raise ConfigError("DXC_BLOB_S3_BUCKET and DXC_BLOB_AZURE_CONTAINER are both set: "
                          "blob bytes go to one store")
    return Settings(
        secret=_secret(environ, env, instance_path),
        old_secrets=_old_secrets(environ),
        public_url=_public_url(environ.get("DXC_URL") or f"http://localhost:{port}"),
        database_url=_database_url(environ, instance_path),
        redis_url=environ.get("REDIS_URL") or None,
        env=env,
        instance_path=instance_path,
        max_body_bytes=_integer(environ, "DXC_MAX_BODY_BYTES", Settings.max_body_bytes),
        max_tables=_integer(environ, "DXC_MAX_TABLES", Settings.max_tables),
        cors_origins=_origins(environ, env),
        access_token_ttl=_integer(environ, "DXC_ACCESS_TOKEN_TTL", Settings.access_token_ttl),
        refresh_token_ttl=_integer(environ, "DXC_REFRESH_TOKEN_TTL", Settings.refresh_token_ttl),
        refresh_clock_skew=_integer(
            environ, "DXC_REFRESH_CLOCK_SKEW", Settings.refresh_clock_skew
        ),
        otp_ttl=_integer(environ, "DXC_OTP_TTL", Settings.otp_ttl),
        otp_max_attempts=_integer(environ, "DXC_OTP_MAX_ATTEMPTS", Settings.otp_max_attempts),
        otp_rate_window=_integer(environ, "DXC_OTP_RATE_WINDOW", Settings.otp_rate_window),
        otp_max_per_email=_integer(environ, "DXC_OTP_MAX_PER_EMAIL", Settings.otp_max_per_email),
        otp_max_per_address=_integer(
            environ, "DXC_OTP_MAX_PER_ADDRESS", Settings.otp_max_per_address
        ),
        create_db_emails=_create_db_emails(environ, env),
        job_retry_delays=_delays(environ, "DXC_JOB_RETRY_DELAYS", Settings.job_retry_delays),
        replication_poll_ms=_integer(
            environ, "DXC_REPLICATION_POLL_MS", Settings.replication_poll_ms
        ),
        replication_full_read_seconds=_integer(
            environ, "DXC_REPLICATION_FULL_READ_SECONDS", Settings.replication_full_read_seconds
        ),
        proxy_hops=_integer(environ, "DXC_PROXY_HOPS", Settings.proxy_hops),
        deleted_db_grace_days=_integer(
            environ, "DXC_DELETED_DB_GRACE_DAYS", Settings.deleted_db_grace_days
        ),
        max_import_bytes=_integer(environ, "DXC_MAX_IMPORT_BYTES", Settings.max_import_bytes),
        log_format=_log_format(environ),
        metrics_token=environ.get("DXC_METRICS_TOKEN") or None,
        admin_password=environ.get("DXC_ADMIN_PASSWORD") or None,
        max_blob_bytes=_integer(environ, "DXC_MAX_BLOB_BYTES", Settings.max_blob_bytes),
        blob_orphan_grace=_integer(environ, "DXC_BLOB_ORPHAN_GRACE", Settings.blob_orphan_grace),
        blob_s3=blob_s3,
        blob_azure=blob_azure,
        move_hold_seconds=_integer(environ, "DXC_MOVE_HOLD_SECONDS", Settings.move_hold_seconds),
        stats_flush_seconds=_integer(
            environ, "DXC_STATS_FLUSH_SECONDS", Settings.stats_flush_seconds
        ),
        y_compact_after=_integer(environ, "DXC_Y_COMPACT_AFTER", Settings.y_compact_after),
        y_compact_every=_integer(environ, "DXC_Y_COMPACT_EVERY", Settings.y_compact_every),
    )


def settings_or_exit() -> Settings:
    """:func:`load_settings`, or exit (status 2) with one line that names the bad setting.

    For the entry points (gunicorn, ``flask dxc``, ``python -m workers``), where
    a traceback would bury the message.
    """
    try:
        return load_settings()
    except ConfigError as error:
        print(f"dxc-server: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def parse_connection_string(text: str, name: str = "DEXIE_CLOUD") -> URL:
    """Accept a URL (``postgresql://…``, ``sqlite:///…``) or Azure's keyword form.

    The keyword form is what Azure App Service shows for a PostgreSQL
    connection string: ``Server=h;Database=d;Port=5432;User Id=u;Password=p;Ssl Mode=Require;``.
    ``name``: what the errors call the text (it never quotes the text: a password).
    """
    text = text.strip()
    if "://" in text:
        try:
            url = make_url(text)
        except Exception:  # SQLAlchemy's message would quote the text
            raise ConfigError(f"{name} is not a valid database URL") from None
        backend = url.get_backend_name()
        if backend in ("postgres", "postgresql"):
            return url.set(drivername="postgresql+psycopg2")
        if backend == "sqlite":
            return url
        raise ConfigError(f"{name}: unsupported database {backend!r} (use PostgreSQL)")
    return _keyword_connection_string(text, name)


def _keyword_connection_string(text: str, setting: str) -> URL:
    pairs: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"{setting}: cannot read a part of it (expected Name=value)")
        pairs[name.strip().lower().replace(" ", "").replace("_", "")] = value.strip()

    def pick(*names: str) -> str | None:
        return next((pairs[n] for n in names if pairs.get(n)), None)

    host = pick("server", "host", "datasource")
    database = pick("database", "initialcatalog", "dbname")
    if not host or not database:
        raise ConfigError(f"{setting}: the connection string needs Server= and Database=")
    port = pick("port")
    query = {}
    ssl_mode = pick("sslmode")
    if ssl_mode:
        query["sslmode"] = ssl_mode.lower().replace(" ", "-")
    try:
        return URL.create(
            "postgresql+psycopg2",
            username=pick("userid", "user", "username", "uid"),
            password=pick("password", "pwd"),
            host=host,
            port=int(port) if port else None,
            database=database,
            query=query,
        )
    except ValueError:
        raise ConfigError(f"{setting}: Port must be a number, not {port!r}") from None


def _database_url(environ: Mapping[str, str], instance_path: Path) -> URL:
    for name in CONNECTION_STRING_NAMES:
        if environ.get(name):
            return parse_connection_string(environ[name])
    return URL.create("sqlite", database=str((instance_path / "dxc.sqlite").resolve()))


def _secret(environ: Mapping[str, str], env: str, instance_path: Path) -> str:
    """``DXC_SECRET``, or in development a random one kept under ``instance/``.

    Keeping it on disk lets every worker process, and the next start, verify
    the tokens the others issued.
    """
    secret = environ.get("DXC_SECRET", "")
    if secret:
        if len(secret) < 16:
            raise ConfigError("DXC_SECRET must be at least 16 characters long")
        return secret
    if env == "production":
        raise ConfigError("DXC_SECRET is required when DXC_ENV=production")
    path = instance_path / "secret"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _old_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    """``DXC_OLD_SECRETS``: the secrets replaced by ``DXC_SECRET``, comma-separated.

    Each was a ``DXC_SECRET``, so a short one is a mistake (the message says
    which by position, never by value).
    """
    old = [s.strip() for s in environ.get("DXC_OLD_SECRETS", "").split(",")]
    for position, secret in enumerate(old, 1):
        if 0 < len(secret) < 16:
            raise ConfigError(
                f"DXC_OLD_SECRETS: secret {position} is shorter than 16 characters"
            )
    return tuple(secret for secret in old if secret)


def _public_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"DXC_URL must be an http(s) URL, not {url!r}")
    return url.rstrip("/")


def _integer(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive, not {number}")
    return number


def _origins(environ: Mapping[str, str], env: str) -> tuple[str, ...]:
    """``DXC_CORS_ORIGINS``: extra origins for every database, on top of its whitelist.

    Unset, it is ``loopback`` in development (pages on this machine, any
    port: the app a developer runs next to the server) and empty in
    production, where each database's whitelist decides. Any other origin
    only when listed, so that a page elsewhere cannot use a developer's
    server with their credentials. Set to an empty string, only the
    whitelists count.
    """
    value = environ.get("DXC_CORS_ORIGINS")
    if value is None:
        return (LOOPBACK_ORIGINS,) if env == "development" else ()
    return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())


def _create_db_emails(environ: Mapping[str, str], env: str) -> tuple[str, ...] | None:
    """``DXC_CREATE_DB_EMAILS``: addresses or ``@domain``s; in production nobody when unset."""
    value = environ.get("DXC_CREATE_DB_EMAILS")
    if value is None:
        return () if env == "production" else None
    return tuple(e.strip().lower() for e in value.split(",") if e.strip())


def _log_format(environ: Mapping[str, str]) -> str:
    value = default_log_format(environ)
    if value not in LOG_FORMATS:
        raise ConfigError(f"DXC_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value


def _delays(
    environ: Mapping[str, str], name: str, default: tuple[float, ...]
) -> tuple[float, ...]:
    value = environ.get(name)
    if value in (None, ""):
        return default
    try:
        delays = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated seconds, not {value!r}") from None
    if any(delay < 0 for delay in delays):
        raise ConfigError(f"{name} must not contain negative delays")
    return delays


def _s3_settings(environ: Mapping[str, str]) -> S3Settings | None:
    """``DXC_BLOB_S3_BUCKET`` (and ``_ENDPOINT``, ``_REGION``, ``_PREFIX``); unset: no S3."""
    bucket = (environ.get("DXC_BLOB_S3_BUCKET") or "").strip()
    endpoint = (environ.get("DXC_BLOB_S3_ENDPOINT") or "").strip() or None
    if not bucket:
        if endpoint:
            raise ConfigError("DXC_BLOB_S3_ENDPOINT is set but DXC_BLOB_S3_BUCKET is not")
        return None
    if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigError(f"DXC_BLOB_S3_ENDPOINT must be an http(s) URL, not {endpoint!r}")
    return S3Settings(
        bucket=bucket,
        endpoint_url=endpoint,
        region=(environ.get("DXC_BLOB_S3_REGION") or "").strip() or None,
        prefix=environ.get("DXC_BLOB_S3_PREFIX") or "",
    )


def _azure_settings(environ: Mapping[str, str]) -> AzureSettings | None:
    """``DXC_BLOB_AZURE_CONTAINER`` with ``_CONNECTION_STRING`` (and ``_PREFIX``);
    unset: no Azure. The standard ``AZURE_STORAGE_CONNECTION_STRING`` serves too."""
    container = (environ.get("DXC_BLOB_AZURE_CONTAINER") or "").strip()
    connection_string = (
        environ.get("DXC_BLOB_AZURE_CONNECTION_STRING")
        or environ.get("AZURE_STORAGE_CONNECTION_STRING") or ""
    ).strip()
    if not container:
        if environ.get("DXC_BLOB_AZURE_CONNECTION_STRING"):
            raise ConfigError(
                "DXC_BLOB_AZURE_CONNECTION_STRING is set but DXC_BLOB_AZURE_CONTAINER is not"
            )
        return None
    if not connection_string:
        raise ConfigError("DXC_BLOB_AZURE_CONTAINER is set but DXC_BLOB_AZURE_CONNECTION_STRING "
                          "(or AZURE_STORAGE_CONNECTION_STRING) is not")
    if "=" not in connection_string or ";" not in connection_string:
        # Never echo it: it holds the account key.
        raise ConfigError("DXC_BLOB_AZURE_CONNECTION_STRING is not a connection string "
                          "(Key=value;Key=value…, as the portal's 'Access keys' page shows it)")
    return AzureSettings(container, connection_string,
                         prefix=environ.get("DXC_BLOB_AZURE_PREFIX") or "")
