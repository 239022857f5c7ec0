"""Settings: one object built from RUNPLANE_* environment variables and passed down.

Nothing reads os.environ after start-up; tests build Settings directly.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "RUNPLANE_"
REST_DIALECTS = ("runplane", "cheatcode")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(ENV_PREFIX + name)
    return default if value is None or value == "" else value


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    return default if raw is None else int(raw)


def _env_float(name: str, default: float) -> float:
    raw = _env(name)
    return default if raw is None else float(raw)


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name)
    return default if raw is None else raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str) -> tuple[str, ...]:
    raw = _env(name) or ""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".runplane")
    database_url: str = ""
    # PostgreSQL outages (runplane/db.py): every wait is bounded, so requests answer 503 instead of hanging.
    database_connect_timeout: float = 2.0  # opening one connection (TCP, TLS, authentication)
    database_command_timeout: float = 5.0  # one statement; also the longest wait for a free pooled connection
    database_startup_timeout: float = 30.0  # start-up retries this long while the database is unreachable, then exits
    redis_url: str | None = None
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    # Built-in token issuer.
    jwt_secret: str = ""
    jwt_issuer: str = "runplane"
    jwt_audience: str = "runplane"
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    allow_registration: bool = True

    # External issuers (Clerk-style RS256 JWTs verified through a JWKS URL).
    external_jwks_url: str | None = None
    external_issuer: str | None = None
    external_audience: str | None = None
    external_default_abilities: tuple[str, ...] = ()
    jwks_cache_seconds: int = 300

    admin_api_key: str | None = None

    # HTTP hardening.
    max_body_bytes: int = 1024 * 1024
    cors_origins: tuple[str, ...] = ()

    # GraphQL hardening (reference defaults from the foundation issue).
    graphql_max_depth: int = 10
    graphql_max_aliases: int = 15
    graphql_max_tokens: int = 2000
    # Cheap refusals before graphql-core's validation (runplane/schema/limits.py).
    graphql_max_document_chars: int = 100_000
    graphql_max_operations: int = 20
    graphql_max_directives: int = 50
    graphql_max_selections: int = 1000  # fields of one operation, fragments expanded
    graphql_max_field_duplicates: int = 20  # fields sharing a response key in one selection set
    graphql_max_variable_values: int = 10_000  # list items and object fields of all variables together
    graphql_introspection: bool = True
    graphql_graphiql: bool = True
    # Execute/serialize runEvents once per document and event for all WebSocket subscribers (schema/fanout.py).
    graphql_shared_fanout: bool = True
    # Queries run through a plan compiled once per document, falling back to graphql-core (schema/compiled.py).
    graphql_compiled_queries: bool = True
    # permessage-deflate compresses every frame once per socket: with fan-out that is the dominant cost.
    ws_compression: bool = False

    log_level: str = "INFO"

    # Agent runs.
    model_provider: str = "scripted"  # scripted (offline) | openai (any OpenAI-compatible API)
    model_base_url: str | None = None  # default OpenRouter for `openai`
    model_api_key: str | None = None
    default_model: str = "scripted/demo"
    run_queue: str = "auto"  # inprocess | arq | auto (arq when Redis is configured)
    max_agent_steps: int = 20
    max_concurrent_runs: int = 16
    run_lease_seconds: int = 30
    run_heartbeat_seconds: int = 10
    reaper_interval_seconds: int = 15
    scripted_chunk_delay: float = 0.0  # seconds between the scripted agent's words (demos, tests)
    # Seconds of silence before an SSE run stream sends a `: ping` comment (seeds/cheatcode-api.md: 15).
    sse_heartbeat_seconds: float = 15.0
    # The REST dialect answered where runplane's documented shapes and Cheatcode's web app truly conflict
    # (run streams, list shapes, run status): `runplane` (default) or `cheatcode`; `?dialect=` overrides it per
    # request (runplane/rest_compat/dialect.py).
    rest_dialect: str = "runplane"
    # `runplane serve`: seconds open connections (run streams never end by themselves) get after SIGTERM.
    shutdown_grace_seconds: int = 10

    # Rate limits (seeds/orchestrator-api.md): per user, per minute; 0 disables.
    rate_limit_per_minute: int = 60
    run_starts_per_minute: int = 6
    max_streams_per_user: int = 4  # one SSE stream, GraphQL stream over HTTP, or WebSocket with subscriptions each
    # A held stream slot is a lease its process renews every third of this: a dead process's slots free themselves.
    stream_lease_seconds: int = 30
    # Login attempts are throttled per account and client address, per client address over all accounts, and per
    # account from unknown addresses; successful logins cost nothing (0 disables each).
    login_failures_per_minute: int = 10  # per account and address
    login_address_failures_per_minute: int = 30  # per address (one office behind one NAT shares it)
    # Failed logins per account per 15 minutes, from addresses the account never had a session from (0 disables):
    # bounds guessing spread over many addresses, while the owner's known addresses still get in.
    login_account_failures: int = 50
    registrations_per_hour: int = 10  # per client address (0 disables): each costs an argon2 hash
    admin_key_failures_per_minute: int = 10  # wrong X-API-Key values per client address (0 disables)
    # Live sockets and long streams re-check their session this often (revocations made by other processes).
    session_recheck_seconds: float = 5.0
    # Slow clients (`runplane serve`): a request's headers must arrive within this many seconds of its first
    # byte; a request body may pause at most this long between chunks.
    http_header_timeout: float = 10.0
    http_body_timeout: float = 30.0

    # Billing (runplane/billing): plans, payment providers, webhooks, bring-your-own-key.
    billing_plans: str | None = None  # JSON list of plans or a path to one; None: the built-in plans
    billing_default_plan: str = "free"
    billing_period_days: int = 30
    # Tokens each platform-billed run in flight holds against the allowance (capped at what is left): once less
    # than this is left, only one such run may be in flight (runplane/resolvers/billing.py).
    billing_run_reservation: int = 20_000
    billing_provider: str | None = None  # polar | stripe: default for checkout sessions
    billing_success_url: str | None = None
    billing_cancel_url: str | None = None
    polar_api_url: str = "https://api.polar.sh"
    polar_access_token: str | None = None
    polar_webhook_secret: str | None = None
    polar_products: tuple[str, ...] = ()  # "plan=product_id" pairs
    stripe_api_url: str = "https://api.stripe.com"
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_prices: tuple[str, ...] = ()  # "plan=price_id" pairs
    webhook_tolerance_seconds: int = 300
    # AES-GCM key for secrets at rest (users' model keys); default: generated and kept in data_dir.
    encryption_key: str | None = None
    byok_base_url: str | None = None  # where users' own keys are used and tested; default model_base_url or OpenRouter

    # Sandboxes (runplane/sandboxes): one per project, local workspaces under sandbox_dir.
    sandbox_dir: Path | None = None  # default <data_dir>/workspaces; as root every ancestor needs o+x
    sandbox_idle_timeout_seconds: float = 15 * 60  # no activity this long: sessions stop, status "stopped"
    sandbox_reaper_interval_seconds: float = 30
    sandbox_require_isolation: bool = False  # refuse to run commands when bubblewrap does not work
    sandbox_network: bool = True  # False: no network in commands (needs bubblewrap; previews then cannot work)
    # As root: iptables rules keep sandbox uids away from this host's own services (sandboxes/egress.py)
    sandbox_block_host_network: bool = True
    # Networks of other machines sandbox commands must not reach either (CIDRs: the compose network of the
    # database and Redis, a VPC's private ranges). Needs the guard above; every process of a host the same.
    sandbox_blocked_networks: tuple[str, ...] = ()
    # As root: a network namespace per sandbox, only its own loopback inside (sandboxes/netns.py)
    sandbox_network_namespaces: bool = True
    sandbox_command_timeout_seconds: float = 60  # ceiling of one command's wall time
    sandbox_cpu_seconds: int = 60
    sandbox_memory_bytes: int = 1024**3
    sandbox_max_processes: int = 256
    sandbox_max_output_bytes: int = 1024**2
    sandbox_max_file_bytes: int = 100 * 1024**2
    sandbox_max_upload_bytes: int = 50 * 1024**2  # one upload request, all its files together
    sandbox_max_sessions: int = 8
    sandbox_uid_start: int = 200_000  # sandboxes get uids [start, start+count) when running as root
    sandbox_uid_count: int = 65_536
    # Previews: `<base>/preview/<token>/`; default base is the URL the request came in on. A separate origin
    # (another host name for this server) keeps previewed pages away from the API origin's storage.
    preview_base_url: str | None = None
    preview_token_ttl_seconds: int = 30 * 60

    # Deployments (runplane/deployments): `local` publishes a copy served at /sites/<id>/; `vercel` uses its REST API.
    deploy_provider: str = "local"  # local | vercel
    sites_base_url: str | None = None  # where /sites/ is reached; default the URL the request came in on
    deploy_max_files: int = 5000
    deploy_max_bytes: int = 100 * 1024**2
    vercel_api_url: str = "https://api.vercel.com"
    vercel_token: str | None = None
    vercel_team_id: str | None = None

    # Composio (integrations): toolkit catalog, connected accounts, MCP servers; None: catalog routes answer 503.
    composio_base_url: str | None = None
    composio_api_key: str | None = None
    composio_cache_seconds: float = 300.0

    # Feature flags (GET /api/feature-flags): JSON object of name -> bool (or {"enabled": bool, ...}).
    feature_flags_enabled: bool = False
    feature_flags: str | None = None

    # Email (POST /api/send-welcome-email); no host: 503.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    smtp_security: str = "starttls"  # starttls | ssl | none
    smtp_timeout_seconds: float = 15.0

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        data_dir = Path(_env("DATA_DIR", ".runplane") or ".runplane")
        values: dict[str, Any] = dict(
            data_dir=data_dir,
            database_url=_env("DATABASE_URL", "") or "",
            database_connect_timeout=_env_float("DATABASE_CONNECT_TIMEOUT", 2.0),
            database_command_timeout=_env_float("DATABASE_COMMAND_TIMEOUT", 5.0),
            database_startup_timeout=_env_float("DATABASE_STARTUP_TIMEOUT", 30.0),
            redis_url=_env("REDIS_URL"),
            jwt_secret=_env("JWT_SECRET", "") or "",
            jwt_issuer=_env("JWT_ISSUER", "runplane") or "runplane",
            jwt_audience=_env("JWT_AUDIENCE", "runplane") or "runplane",
            access_token_ttl_seconds=_env_int("ACCESS_TOKEN_TTL", 15 * 60),
            refresh_token_ttl_seconds=_env_int("REFRESH_TOKEN_TTL", 30 * 24 * 3600),
            allow_registration=_env_bool("ALLOW_REGISTRATION", True),
            external_jwks_url=_env("EXTERNAL_JWKS_URL"),
            external_issuer=_env("EXTERNAL_ISSUER"),
            external_audience=_env("EXTERNAL_AUDIENCE"),
            external_default_abilities=_env_list("EXTERNAL_DEFAULT_ABILITIES"),
            admin_api_key=_env("ADMIN_API_KEY"),
            max_body_bytes=_env_int("MAX_BODY_BYTES", 1024 * 1024),
            cors_origins=_env_list("CORS_ORIGINS"),
            graphql_max_depth=_env_int("GRAPHQL_MAX_DEPTH", 10),
            graphql_max_aliases=_env_int("GRAPHQL_MAX_ALIASES", 15),
            graphql_max_tokens=_env_int("GRAPHQL_MAX_TOKENS", 2000),
            graphql_max_document_chars=_env_int("GRAPHQL_MAX_DOCUMENT_CHARS", 100_000),
            graphql_max_operations=_env_int("GRAPHQL_MAX_OPERATIONS", 20),
            graphql_max_directives=_env_int("GRAPHQL_MAX_DIRECTIVES", 50),
            graphql_max_selections=_env_int("GRAPHQL_MAX_SELECTIONS", 1000),
            graphql_max_field_duplicates=_env_int("GRAPHQL_MAX_FIELD_DUPLICATES", 20),
            graphql_max_variable_values=_env_int("GRAPHQL_MAX_VARIABLE_VALUES", 10_000),
            graphql_introspection=_env_bool("GRAPHQL_INTROSPECTION", True),
            graphql_graphiql=_env_bool("GRAPHQL_GRAPHIQL", True),
            graphql_shared_fanout=_env_bool("GRAPHQL_SHARED_FANOUT", True),
            graphql_compiled_queries=_env_bool("GRAPHQL_COMPILED_QUERIES", True),
            ws_compression=_env_bool("WS_COMPRESSION", False),
            log_level=_env("LOG_LEVEL", "INFO") or "INFO",
            model_provider=_env("MODEL_PROVIDER", "scripted") or "scripted",
            model_base_url=_env("MODEL_BASE_URL"),
            model_api_key=_env("MODEL_API_KEY"),
            default_model=_env("DEFAULT_MODEL", "scripted/demo") or "scripted/demo",
            run_queue=_env("RUN_QUEUE", "auto") or "auto",
            max_agent_steps=_env_int("MAX_AGENT_STEPS", 20),
            max_concurrent_runs=_env_int("MAX_CONCURRENT_RUNS", 16),
            run_lease_seconds=_env_int("RUN_LEASE_SECONDS", 30),
            run_heartbeat_seconds=_env_int("RUN_HEARTBEAT_SECONDS", 10),
            reaper_interval_seconds=_env_int("REAPER_INTERVAL_SECONDS", 15),
            scripted_chunk_delay=_env_float("SCRIPTED_CHUNK_DELAY", 0.0),
            sse_heartbeat_seconds=_env_float("SSE_HEARTBEAT_SECONDS", 15.0),
            rest_dialect=_env("REST_DIALECT", "runplane") or "runplane",
            shutdown_grace_seconds=_env_int("SHUTDOWN_GRACE_SECONDS", 10),
            rate_limit_per_minute=_env_int("RATE_LIMIT_PER_MINUTE", 60),
            run_starts_per_minute=_env_int("RUN_STARTS_PER_MINUTE", 6),
            max_streams_per_user=_env_int("MAX_STREAMS_PER_USER", 4),
            stream_lease_seconds=_env_int("STREAM_LEASE_SECONDS", 30),
            login_failures_per_minute=_env_int("LOGIN_FAILURES_PER_MINUTE", 10),
            login_address_failures_per_minute=_env_int("LOGIN_ADDRESS_FAILURES_PER_MINUTE", 30),
            login_account_failures=_env_int("LOGIN_ACCOUNT_FAILURES", 50),
            registrations_per_hour=_env_int("REGISTRATIONS_PER_HOUR", 10),
            admin_key_failures_per_minute=_env_int("ADMIN_KEY_FAILURES_PER_MINUTE", 10),
            session_recheck_seconds=_env_float("SESSION_RECHECK_SECONDS", 5.0),
            http_header_timeout=_env_float("HTTP_HEADER_TIMEOUT", 10.0),
            http_body_timeout=_env_float("HTTP_BODY_TIMEOUT", 30.0),
            billing_plans=_env("BILLING_PLANS"),
            billing_default_plan=_env("BILLING_DEFAULT_PLAN", "free") or "free",
            billing_period_days=_env_int("BILLING_PERIOD_DAYS", 30),
            billing_run_reservation=_env_int("BILLING_RUN_RESERVATION", 20_000),
            billing_provider=_env("BILLING_PROVIDER"),
            billing_success_url=_env("BILLING_SUCCESS_URL"),
            billing_cancel_url=_env("BILLING_CANCEL_URL"),
            polar_api_url=_env("POLAR_API_URL", "https://api.polar.sh") or "https://api.polar.sh",
            polar_access_token=_env("POLAR_ACCESS_TOKEN"),
            polar_webhook_secret=_env("POLAR_WEBHOOK_SECRET"),
            polar_products=_env_list("POLAR_PRODUCTS"),
            stripe_api_url=_env("STRIPE_API_URL", "https://api.stripe.com") or "https://api.stripe.com",
            stripe_secret_key=_env("STRIPE_SECRET_KEY"),
            stripe_webhook_secret=_env("STRIPE_WEBHOOK_SECRET"),
            stripe_prices=_env_list("STRIPE_PRICES"),
            webhook_tolerance_seconds=_env_int("WEBHOOK_TOLERANCE_SECONDS", 300),
            encryption_key=_env("ENCRYPTION_KEY"),
            byok_base_url=_env("BYOK_BASE_URL"),
            sandbox_dir=Path(d) if (d := _env("SANDBOX_DIR")) else None,
            sandbox_idle_timeout_seconds=_env_float("SANDBOX_IDLE_TIMEOUT", 15 * 60),
            sandbox_reaper_interval_seconds=_env_float("SANDBOX_REAPER_INTERVAL", 30),
            sandbox_require_isolation=_env_bool("SANDBOX_REQUIRE_ISOLATION", False),
            sandbox_network=_env_bool("SANDBOX_NETWORK", True),
            sandbox_block_host_network=_env_bool("SANDBOX_BLOCK_HOST_NETWORK", True),
            sandbox_blocked_networks=_env_list("SANDBOX_BLOCKED_NETWORKS"),
            sandbox_network_namespaces=_env_bool("SANDBOX_NETWORK_NAMESPACES", True),
            sandbox_command_timeout_seconds=_env_float("SANDBOX_COMMAND_TIMEOUT", 60),
            sandbox_cpu_seconds=_env_int("SANDBOX_CPU_SECONDS", 60),
            sandbox_memory_bytes=_env_int("SANDBOX_MEMORY_BYTES", 1024**3),
            sandbox_max_processes=_env_int("SANDBOX_MAX_PROCESSES", 256),
            sandbox_max_output_bytes=_env_int("SANDBOX_MAX_OUTPUT_BYTES", 1024**2),
            sandbox_max_file_bytes=_env_int("SANDBOX_MAX_FILE_BYTES", 100 * 1024**2),
            sandbox_max_upload_bytes=_env_int("SANDBOX_MAX_UPLOAD_BYTES", 50 * 1024**2),
            sandbox_max_sessions=_env_int("SANDBOX_MAX_SESSIONS", 8),
            sandbox_uid_start=_env_int("SANDBOX_UID_START", 200_000),
            sandbox_uid_count=_env_int("SANDBOX_UID_COUNT", 65_536),
            preview_base_url=_env("PREVIEW_BASE_URL"),
            preview_token_ttl_seconds=_env_int("PREVIEW_TOKEN_TTL", 30 * 60),
            deploy_provider=_env("DEPLOY_PROVIDER", "local") or "local",
            sites_base_url=_env("SITES_BASE_URL"),
            deploy_max_files=_env_int("DEPLOY_MAX_FILES", 5000),
            deploy_max_bytes=_env_int("DEPLOY_MAX_BYTES", 100 * 1024**2),
            vercel_api_url=_env("VERCEL_API_URL", "https://api.vercel.com") or "https://api.vercel.com",
            vercel_token=_env("VERCEL_TOKEN"),
            vercel_team_id=_env("VERCEL_TEAM_ID"),
            composio_base_url=_env("COMPOSIO_BASE_URL"),
            composio_api_key=_env("COMPOSIO_API_KEY"),
            composio_cache_seconds=_env_float("COMPOSIO_CACHE_SECONDS", 300.0),
            feature_flags_enabled=_env_bool("FEATURE_FLAGS_ENABLED", False),
            feature_flags=_env("FEATURE_FLAGS"),
            smtp_host=_env("SMTP_HOST"),
            smtp_port=_env_int("SMTP_PORT", 587),
            smtp_username=_env("SMTP_USERNAME"),
            smtp_password=_env("SMTP_PASSWORD"),
            smtp_from=_env("SMTP_FROM"),
            smtp_security=_env("SMTP_SECURITY", "starttls") or "starttls",
            smtp_timeout_seconds=_env_float("SMTP_TIMEOUT", 15.0),
        )
        values.update(overrides)
        return cls(**values).resolved()

    def resolved(self) -> "Settings":
        """Fill the embedded defaults: a SQLite file and a persisted signing secret in data_dir."""
        if self.rest_dialect not in REST_DIALECTS:
            raise ValueError(
                f"RUNPLANE_REST_DIALECT must be one of {', '.join(REST_DIALECTS)}, not {self.rest_dialect!r}"
            )
        database_url = self.database_url or f"sqlite://{self.data_dir / 'runplane.sqlite3'}"
        jwt_secret = self.jwt_secret or _persisted_secret(self.data_dir / "jwt-secret")
        return replace(self, database_url=database_url, jwt_secret=jwt_secret)

    @property
    def uses_job_queue(self) -> bool:
        """Runs go through arq (any `runplane worker` may take them) or stay in this process."""
        if self.run_queue == "auto":
            return self.redis_url is not None
        return self.run_queue == "arq"

    @property
    def workspaces_dir(self) -> Path:
        return self.data_dir / "workspaces"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def tortoise_config(self, *, migrations: bool = False) -> dict[str, Any]:
        """Migrations get no command timeout: a long data migration is not an outage."""
        return tortoise_config(
            self.database_url,
            connect_timeout=self.database_connect_timeout,
            command_timeout=None if migrations else self.database_command_timeout,
        )


MODEL_MODULES = ["runplane.models"]


def tortoise_config(
    database_url: str, *, connect_timeout: float | None = None, command_timeout: float | None = None
) -> dict[str, Any]:
    return {
        "connections": {"default": _connection_config(database_url, connect_timeout, command_timeout)},
        "apps": {
            "runplane": {
                "models": MODEL_MODULES,
                "migrations": "runplane.models.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _connection_config(
    database_url: str, connect_timeout: float | None, command_timeout: float | None
) -> str | dict[str, Any]:
    """PostgreSQL goes through runplane.db_backend (asyncpg, with bounded waits); anything else as Tortoise reads the
    URL."""
    if database_url.split("://", 1)[0] not in {"postgres", "postgresql", "asyncpg"}:
        return database_url
    from tortoise.backends.base.config_generator import expand_db_url

    credentials: dict[str, Any] = expand_db_url(database_url)["credentials"]
    if connect_timeout is not None:
        credentials["timeout"] = connect_timeout  # asyncpg's connect timeout
    if command_timeout is not None:
        credentials.update(command_timeout=command_timeout, acquire_timeout=command_timeout)
    return {"engine": "runplane.db_backend", "credentials": credentials}


def _persisted_secret(path: Path) -> str:
    """A random secret kept beside the embedded database so tokens survive restarts."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


# Used by the `tortoise` CLI (makemigrations): `tortoise -c runplane.config.TORTOISE_ORM makemigrations`.
TORTOISE_ORM = tortoise_config(os.environ.get(ENV_PREFIX + "DATABASE_URL") or "sqlite://:memory:")
