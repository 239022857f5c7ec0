"""Long-lived process services shared by every request: settings, clients, the event bus, the run queue."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from runplane.auth.jwks import JWKSClient
from runplane.auth.watch import CredentialWatch
from runplane.config import Settings
from runplane.ratelimit.leases import StreamLeases
from runplane.ratelimit.windows import Windows
from runplane.sandboxes.sandbox import SandboxHandle
from runplane.sandboxes.service import SandboxManager, sandbox_for_project

HTTP_TIMEOUT = httpx.Timeout(20.0, connect=5.0)  # a default; provider calls pass their own

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from runplane.events.bus import EventBus


# The two things Services holds for the run engine (runplane/agents/), declared here by what Services does with
# them, so that the engine's package sits above this one and not both ways round.
class RunDispatcher(Protocol):
    """Where runs execute (agents/dispatch.py: in this process, or queued for any worker)."""

    async def submit(self, run_id: uuid.UUID) -> None: ...

    async def close(self) -> None: ...


class AsyncCloseable(Protocol):
    """A process-wide client closed with the services (a shared model provider, agents/keys.py)."""

    async def aclose(self) -> None: ...


@dataclass
class Services:
    settings: Settings
    redis: "Redis | None" = None
    jwks: JWKSClient | None = None
    _event_bus: "EventBus | None" = None
    _dispatcher: "RunDispatcher | None" = None
    # The shared model providers by kind, made on first use by agents/keys.py (closed with the services).
    model_providers: dict[str, AsyncCloseable] = field(default_factory=dict)
    _sandboxes: SandboxManager | None = None
    _windows: Windows | None = None
    _leases: StreamLeases | None = None
    _credentials: CredentialWatch | None = None
    _http: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    # Extension point for later capabilities; typed accessors live with them.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        jwks = None
        if settings.external_jwks_url:
            jwks = JWKSClient(settings.external_jwks_url, cache_seconds=settings.jwks_cache_seconds)
        redis = None
        if settings.redis_url:
            from redis.asyncio import Redis

            redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
        return cls(settings=settings, redis=redis, jwks=jwks)

    async def start(self, *, dispatcher: "Callable[[Services], RunDispatcher] | None" = None) -> None:
        """`dispatcher` makes the run dispatcher of a process that starts runs (the API process passes
        agents.dispatch.make_dispatcher); a worker, which only executes them, passes none."""
        from runplane.events.bus import create_event_bus

        self._event_bus = create_event_bus(self.settings.redis_url)
        await self._event_bus.start()
        self.leases.start()
        self.credentials.start()
        if dispatcher is not None:
            self._dispatcher = dispatcher(self)

    @property
    def event_bus(self) -> "EventBus":
        assert self._event_bus is not None, "services not started"
        return self._event_bus

    @property
    def windows(self) -> Windows:
        """Rate-limit windows (runplane/ratelimit/windows.py), shared through Redis when configured."""
        if self._windows is None:
            self._windows = Windows(self.redis)
        return self._windows

    @property
    def leases(self) -> StreamLeases:
        """This process's stream slots (runplane/ratelimit/leases.py)."""
        if self._leases is None:
            self._leases = StreamLeases(
                self.redis, lease_seconds=self.settings.stream_lease_seconds, instance_id=self.settings.instance_id
            )
        return self._leases

    @property
    def credentials(self) -> CredentialWatch:
        """Watches the credentials of open sockets and streams (runplane/auth/watch.py)."""
        if self._credentials is None:
            self._credentials = CredentialWatch(self.settings.session_recheck_seconds)
        return self._credentials

    @property
    def dispatcher(self) -> "RunDispatcher":
        assert self._dispatcher is not None, "this process does not dispatch runs"
        return self._dispatcher

    def http(self, provider: str) -> httpx.AsyncClient:
        """One pooled HTTP client per outside provider (stripe, polar, byok): connections are reused across
        calls instead of a TLS handshake each; closed with the services. Timeouts are given per request."""
        client = self._http.get(provider)
        if client is None or client.is_closed:
            client = self._http[provider] = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
        return client

    @property
    def sandboxes(self) -> SandboxManager:
        """The sandbox backend and this process's sandbox state, made on first use."""
        if self._sandboxes is None:
            self._sandboxes = SandboxManager(self.settings)
        return self._sandboxes

    async def sandbox_for_project(self, project_id: uuid.UUID) -> SandboxHandle:
        return await sandbox_for_project(self.sandboxes, project_id)

    async def close(self) -> None:
        if self._leases is not None:
            await self._leases.stop()
        if self._credentials is not None:
            await self._credentials.stop()
        if self._dispatcher is not None:
            await self._dispatcher.close()
        if self._event_bus is not None:
            await self._event_bus.stop()
        for provider in self.model_providers.values():
            await provider.aclose()
        for client in self._http.values():
            await client.aclose()
        if self._sandboxes is not None:
            await self._sandboxes.close()  # stops every session this process started
        if self.redis is not None:
            await self.redis.aclose()
