"""Long-lived process services shared by every request: settings, clients, buses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runplane.auth.jwks import JWKSClient
from runplane.config import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass
class Services:
    settings: Settings
    redis: "Redis | None" = None
    jwks: JWKSClient | None = None
    # Extension point for later capabilities (event bus, executor, sandboxes); typed accessors live with them.
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

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
