"""Settings: one typed field per RUNPLANE_* environment variable (pydantic-settings), passed down as one object.

The environment variable of a field is its name in capitals with the RUNPLANE_ prefix; the default is written
once, on the field. `Settings.from_env()` reads the environment (the CLI, `create_app()`); `Settings(...)` takes
keyword arguments only, so tests build exactly what they pass. A malformed or unknown value stops start-up with
an error naming the variable: `RUNPLANE_SANDBOX_BLOCK_HOST_NETWORK=enabled` is not a spelling of true or false.
A RUNPLANE_* variable that nothing reads is logged as a warning at start-up, with the setting it resembles.
"""

from __future__ import annotations

import contextvars
import difflib
import os
import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "RUNPLANE_"
RestDialect = Literal["runplane", "cheatcode"]
_READ_ENVIRONMENT = contextvars.ContextVar("runplane_settings_from_env", default=False)


class SettingsError(ValueError):
    """Start-up refused: the message names each offending RUNPLANE_* variable and its value."""


def _split(value: object) -> object:
    """A comma-separated list, as operators write it in an environment file."""
    return tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) else value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _renamed(name: str, old: str) -> AliasChoices:
    """The field's own variable, and the shorter name it had before env name = field name (still accepted)."""
    return AliasChoices(ENV_PREFIX + name.upper(), ENV_PREFIX + old)


class _Environment(EnvSettingsSource):
    """The RUNPLANE_* variables, except for fields that must differ between processes sharing one environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in NOT_FROM_ENVIRONMENT:
            return None, field_name, False
        return super().get_field_value(field, field_name)


# instance_id names one process in lease ids and worker ids: uvicorn's workers share one environment.
NOT_FROM_ENVIRONMENT = frozenset({"instance_id"})

# Sites and previews are tenants' apps: their own scripts, styles, fetches and sockets work; plugins, <base> and
# form posts elsewhere do not. What separates them from the API is their origin; this is a second line.
DEFAULT_UNTRUSTED_CSP = (
    "default-src 'self' https: data: blob: 'unsafe-inline' 'unsafe-eval'; connect-src 'self' https: wss:; "
    "object-src 'none'; base-uri 'self'; form-action 'self' https:"
)

Count = Annotated[int, Field(ge=0)]
Number = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split)]
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,  # VAR= in an environment file means "the default", as before
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
    )

    data_dir: Path = Path(".runplane")
    database_url: str = ""
    # PostgreSQL outages (runplane/db.py): every wait is bounded, so requests answer 503 instead of hanging.
    database_connect_timeout: Number = 2.0  # opening one connection (TCP, TLS, authentication)
    database_command_timeout: Number = 5.0  # one statement; also the longest wait for a free pooled connection
    database_startup_timeout: Number = 30.0  # start-up retries this long while the database is unreachable, then exits
    redis_url: str | None = None
    instance_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])  # names this process in leases and logs

    # Built-in token issuer.
    jwt_secret: str = ""
    jwt_issuer: str = "runplane"
    jwt_audience: str = "runplane"
    access_token_ttl_seconds: Count = Field(
        15 * 60, validation_alias=_renamed("access_token_ttl_seconds", "ACCESS_TOKEN_TTL")
    )
    refresh_token_ttl_seconds: Count = Field(
        30 * 24 * 3600, validation_alias=_renamed("refresh_token_ttl_seconds", "REFRESH_TOKEN_TTL")
    )
    allow_registration: bool = True

    # External issuers (Clerk-style RS256 JWTs verified through a JWKS URL).
    external_jwks_url: str | None = None
    external_issuer: str | None = None
    external_audience: str | None = None
    external_default_abilities: Names = ()
    jwks_cache_seconds: Count = 300

    admin_api_key: str | None = None

    # HTTP hardening.
    max_body_bytes: Count = 1024 * 1024
    cors_origins: Names = ()

    # GraphQL hardening (reference defaults from the foundation issue).
    graphql_max_depth: Count = 10
    graphql_max_aliases: Count = 15
    graphql_max_tokens: Count = 2000
    # Cheap refusals before graphql-core's validation (runplane/schema/limits.py).
    graphql_max_document_chars: Count = 100_000
    graphql_max_operations: Count = 20
    graphql_max_directives: Count = 50
    graphql_max_selections: Count = 1000  # fields of one operation, fragments expanded
    graphql_max_field_duplicates: Count = 20  # fields sharing a response key in one selection set
    graphql_max_variable_values: Count = 10_000  # list items and object fields of all variables together
    graphql_introspection: bool = True
    graphql_graphiql: bool = True
    # Execute/serialize runEvents once per document and event for all WebSocket subscribers (schema/fanout.py).
    graphql_shared_fanout: bool = True
    # Queries run through a plan compiled once per document, falling back to graphql-core (schema/compiled.py).
    graphql_compiled_queries: bool = True
    # permessage-deflate compresses every frame once per socket: with fan-out that is the dominant cost.
    ws_compression: bool = False
    # Persisted queries (runplane/persisted_queries.py): automatic (APQ, registered by signed-in clients, bounded,
    # in Redis when configured) and an allow-list mode in which only operations of the operations file run.
    graphql_persisted_queries: bool = True
    graphql_persisted_queries_max_bytes: Annotated[int, Field(ge=1)] = 32 * 1024 * 1024  # in memory (LRU), no Redis
    graphql_persisted_queries_ttl_seconds: Annotated[int, Field(ge=1)] = 24 * 3600
    graphql_allowlist_only: bool = False
    graphql_operations_file: Path | None = None  # default <data_dir>/graphql-operations.json

    log_level: LogLevel = "INFO"

    # Agent runs.
    model_provider: Literal["scripted", "openai"] = (
        "scripted"  # scripted (offline) | openai (any OpenAI-compatible API)
    )
    model_base_url: str | None = None  # default OpenRouter for `openai`
    model_api_key: str | None = None
    default_model: str = "scripted/demo"
    run_queue: Literal["inprocess", "arq", "auto"] = "auto"  # inprocess | arq | auto (arq when Redis is configured)
    max_agent_steps: Count = 20
    max_concurrent_runs: Count = 16
    run_lease_seconds: Count = 30
    run_heartbeat_seconds: Count = 10
    reaper_interval_seconds: Count = 15
    # A run still queued this long after it was pushed to arq is checked there and pushed again if Redis lost it.
    run_requeue_seconds: Count = 30
    # A run no worker started within this many seconds is failed with a clear error (its thread and tokens freed).
    run_queue_timeout: Count = 900
    outbox_interval_seconds: Number = 1.0  # how often the run outbox is drained into the job queue
    worker_beat_seconds: Number = 5.0  # how often a worker writes its health (last poll, running runs)
    scripted_chunk_delay: Number = 0.0  # seconds between the scripted agent's words (demos, tests)
    # Seconds of silence before an SSE run stream sends a `: ping` comment (Cheatcode's documented interval: 15).
    sse_heartbeat_seconds: Number = 15.0
    # The REST dialect answered where runplane's documented shapes and Cheatcode's web app truly conflict
    # (run streams, list shapes, run status): `runplane` (default) or `cheatcode`; `?dialect=` overrides it per
    # request (runplane/rest_compat/dialect.py).
    rest_dialect: RestDialect = "runplane"
    # `runplane serve`: seconds open connections (run streams never end by themselves) get after SIGTERM.
    shutdown_grace_seconds: Count = 10

    # Rate limits: per user, per minute (429 with Retry-After past them); 0 disables.
    rate_limit_per_minute: Count = 60
    run_starts_per_minute: Count = 6
    max_streams_per_user: Count = 4  # one SSE stream, GraphQL stream over HTTP, or WebSocket with subscriptions each
    # A held stream slot is a lease its process renews every third of this: a dead process's slots free themselves.
    stream_lease_seconds: Count = 30
    # Login attempts are throttled per account and client address, per client address over all accounts, and per
    # account from unknown addresses; successful logins cost nothing (0 disables each).
    login_failures_per_minute: Count = 10  # per account and address
    login_address_failures_per_minute: Count = 30  # per address (one office behind one NAT shares it)
    # Failed logins per account per 15 minutes, from addresses the account never had a session from (0 disables):
    # bounds guessing spread over many addresses, while the owner's known addresses still get in.
    login_account_failures: Count = 50
    registrations_per_hour: Count = 10  # per client address (0 disables): each costs an argon2 hash
    admin_key_failures_per_minute: Count = 10  # wrong X-API-Key values per client address (0 disables)
    # Live sockets and long streams re-check their session this often (revocations made by other processes).
    session_recheck_seconds: Number = 5.0
    # Slow clients (`runplane serve`): a request's headers must arrive within this many seconds of its first
    # byte; a request body may pause at most this long between chunks.
    http_header_timeout: Number = 10.0
    http_body_timeout: Number = 30.0

    # Billing (runplane/billing): plans, payment providers, webhooks, bring-your-own-key.
    billing_plans: str | None = None  # JSON list of plans or a path to one; None: the built-in plans
    billing_default_plan: str = "free"
    billing_period_days: Count = 30
    # Tokens each platform-billed run in flight holds against the allowance (capped at what is left): once less
    # than this is left, only one such run may be in flight (runplane/resolvers/billing.py).
    billing_run_reservation: Count = 20_000
    billing_provider: Literal["polar", "stripe"] | None = None  # polar | stripe: default for checkout sessions
    billing_success_url: str | None = None
    billing_cancel_url: str | None = None
    polar_api_url: str = "https://api.polar.sh"
    polar_access_token: str | None = None
    polar_webhook_secret: str | None = None
    polar_products: Names = ()  # "plan=product_id" pairs
    stripe_api_url: str = "https://api.stripe.com"
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_prices: Names = ()  # "plan=price_id" pairs
    webhook_tolerance_seconds: Count = 300
    # AES-GCM key for secrets at rest (users' model keys); default: generated and kept in data_dir.
    encryption_key: str | None = None
    # Keys that sealed values before the current one (comma-separated): still decrypt until
    # `runplane rotate-encryption-key` has re-encrypted everything with the current key.
    encryption_previous_keys: Names = ()
    byok_base_url: str | None = None  # where users' own keys are used and tested; default model_base_url or OpenRouter

    # Sandboxes (runplane/sandboxes): one per project, local workspaces under sandbox_dir.
    sandbox_dir: Path | None = None  # default <data_dir>/workspaces; as root every ancestor needs o+x
    sandbox_idle_timeout_seconds: Number = Field(
        15 * 60, validation_alias=_renamed("sandbox_idle_timeout_seconds", "SANDBOX_IDLE_TIMEOUT")
    )  # no activity this long: sessions stop, status "stopped"
    sandbox_reaper_interval_seconds: Number = Field(
        30, validation_alias=_renamed("sandbox_reaper_interval_seconds", "SANDBOX_REAPER_INTERVAL")
    )
    sandbox_require_isolation: bool = False  # refuse commands also when the network guard is not active
    # Without a working bubblewrap commands are refused (503) unless this opt-out says to run them unisolated.
    sandbox_allow_unisolated: bool = False
    sandbox_bwrap: str | None = None  # the bubblewrap to use; default the system's on PATH, else the bundled one
    sandbox_network: bool = True  # False: no network in commands (needs bubblewrap; previews then cannot work)
    # As root: iptables rules keep sandbox uids away from this host's own services (sandboxes/egress.py)
    sandbox_block_host_network: bool = True
    # Networks of other machines sandbox commands must not reach either (CIDRs: the compose network of the
    # database and Redis, a VPC's private ranges). Needs the guard above; every process of a host the same.
    sandbox_blocked_networks: Names = ()
    # As root: a network namespace per sandbox, only its own loopback inside (sandboxes/netns.py)
    sandbox_network_namespaces: bool = True
    # The egress proxy, a namespaced sandbox's only way out (sandboxes/egress_proxy.py): on/off, optional host
    # allowlist ("example.com", "*.example.com"), networks allowed despite being private (a package mirror)
    sandbox_egress: bool = True
    sandbox_egress_allowlist: Names = ()
    sandbox_egress_allow_networks: Names = ()
    sandbox_command_timeout_seconds: Number = Field(
        60, validation_alias=_renamed("sandbox_command_timeout_seconds", "SANDBOX_COMMAND_TIMEOUT")
    )  # ceiling of one command's wall time
    sandbox_cpu_seconds: Count = 60
    sandbox_memory_bytes: Count = 1024**3
    sandbox_total_memory_bytes: Count = 4 * 1024**3  # memory of a whole sandbox (cgroup, as root)
    sandbox_max_processes: Count = 256
    sandbox_cpus: Number = 1.0  # CPUs one sandbox may use at once (cgroup CPU quota, as root)
    sandbox_disk_bytes: Count = 5 * 1024**3  # workspace disk quota, measured (st_blocks), not trusted
    sandbox_max_output_bytes: Count = 1024**2
    sandbox_max_file_bytes: Count = 100 * 1024**2
    sandbox_max_upload_bytes: Count = 50 * 1024**2  # one upload request, all its files together
    sandbox_max_sessions: Count = 8
    sandbox_uid_start: Count = 200_000  # sandboxes get uids [start, start+count) when running as root
    sandbox_uid_count: Count = 65_536
    # Untrusted pages (sites, previews) on an origin of their own (runplane/origins.py): `runplane serve` listens
    # for them on untrusted_port (default --port + 1); 0: on the API origin (warned; what Settings() alone gives).
    untrusted_port: Count = 0
    untrusted_host: str | None = None  # their listener's address; default the API's --host
    untrusted_base_url: str | None = None  # their public URL; default the request's host name on untrusted_port
    untrusted_csp: str = DEFAULT_UNTRUSTED_CSP
    # Previews: `<base>/preview/<token>/`; default base is the URL the request came in on. A separate origin
    # (another host name for this server) keeps previewed pages away from the API origin's storage.
    preview_base_url: str | None = None
    preview_token_ttl_seconds: Count = Field(
        30 * 60, validation_alias=_renamed("preview_token_ttl_seconds", "PREVIEW_TOKEN_TTL")
    )

    # Deployments (runplane/deployments): `local` publishes a copy served at /sites/<id>/; `vercel` uses its REST API.
    deploy_provider: Literal["local", "vercel"] = "local"  # local | vercel
    sites_base_url: str | None = None  # where /sites/ is reached; default the untrusted origin (below)
    deploy_max_files: Count = 5000
    deploy_max_bytes: Count = 100 * 1024**2
    vercel_api_url: str = "https://api.vercel.com"
    vercel_token: str | None = None
    vercel_team_id: str | None = None

    # Composio (integrations): toolkit catalog, connected accounts, MCP servers; None: catalog routes answer 503.
    composio_base_url: str | None = None
    composio_api_key: str | None = None
    composio_cache_seconds: Number = 300.0

    # Feature flags (GET /api/feature-flags): JSON object of name -> bool (or {"enabled": bool, ...}).
    feature_flags_enabled: bool = False
    feature_flags: str | None = None

    # Email (POST /api/send-welcome-email); no host: 503.
    smtp_host: str | None = None
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"  # starttls | ssl | none
    smtp_timeout_seconds: Number = Field(15.0, validation_alias=_renamed("smtp_timeout_seconds", "SMTP_TIMEOUT"))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _Environment(settings_cls)) if _READ_ENVIRONMENT.get() else (init_settings,)

    @classmethod
    def from_env(cls, *, resolve: bool = True, **overrides: Any) -> Settings:
        """The environment's RUNPLANE_* variables under `overrides` (field names), resolved unless told not to
        (resolving creates the embedded data dir's secret)."""
        token = _READ_ENVIRONMENT.set(True)
        try:
            settings = cls(**overrides)
            return settings.resolved() if resolve else settings
        except ValidationError as error:
            raise SettingsError(_explain(error)) from None
        finally:
            _READ_ENVIRONMENT.reset(token)

    @property
    def embedded_database(self) -> Path:
        """The SQLite file used when no database URL is set."""
        return self.data_dir / "runplane.sqlite3"

    def resolved(self) -> "Settings":
        """Fill the embedded defaults: a SQLite file and a persisted signing secret in data_dir."""
        database_url = self.database_url or f"sqlite://{self.embedded_database}"
        jwt_secret = self.jwt_secret or _persisted_secret(self.data_dir / "jwt-secret")
        return self.model_copy(update={"database_url": database_url, "jwt_secret": jwt_secret})

    @property
    def operations_file(self) -> Path:
        """The registered GraphQL operations (`runplane register-operations` writes it, servers read it)."""
        return self.graphql_operations_file or self.data_dir / "graphql-operations.json"

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


# RUNPLANE_* variables read by something other than Settings: the CLI's own (cli.py) and the test suite's and
# CI's (tests/, .ci/run). Anything else with the prefix is read by nothing.
CLI_VARIABLES = frozenset({"RUNPLANE_HOST", "RUNPLANE_PORT", "RUNPLANE_PASSWORD"})
OTHER_VARIABLES = CLI_VARIABLES | {"RUNPLANE_SEEDS_DIR"}
OTHER_PREFIXES = ("RUNPLANE_TEST_", "RUNPLANE_CI_", "RUNPLANE_FAULTS_")


def setting_variables() -> frozenset[str]:
    """Every variable Settings reads: each field's own name and the older names still accepted."""
    names = set()
    for name, field in Settings.model_fields.items():
        if name in NOT_FROM_ENVIRONMENT:
            continue
        names.add(ENV_PREFIX + name.upper())
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(choice) for choice in field.validation_alias.choices)
    return frozenset(names)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line per RUNPLANE_* variable that nothing reads, with the setting it most looks like: a misspelt
    variable (`..._NETWROK`) otherwise leaves its setting at the default without a word."""
    known = setting_variables()
    lines = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name in OTHER_VARIABLES:
            continue
        if name.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"{name} is not a setting and is ignored{hint}")
    return lines


def _explain(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = str(problem["loc"][0]) if problem["loc"] else ""
        name = where if where.startswith(ENV_PREFIX) else ENV_PREFIX + where.upper()
        lines.append(f"{name}={problem.get('input')!r}: {problem['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)


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
    """PostgreSQL goes through runplane.db_backend (asyncpg, with bounded waits); anything else as Tortoise reads
    the URL."""
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
