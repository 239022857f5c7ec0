"""External issuers (Clerk-style): RS256/ES256 tokens verified against the issuer's JWKS."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt

ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class JWKSClient:
    """Fetches and caches a JWKS document.

    An unknown `kid` (the issuer rotated its keys) triggers a refetch at once, so a rotation never locks
    users out. Those refetches draw on a small budget (`refetches_per_minute`, refilled continuously),
    so tokens with made-up kids cannot turn us into a flood of requests to the issuer.
    """

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: int = 300,
        http: httpx.AsyncClient | None = None,
        refetches_per_minute: int = 10,
    ) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.refetches_per_minute = refetches_per_minute
        self._http = http
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._budget = float(refetches_per_minute)
        self._budget_at = time.monotonic()

    async def key_for(self, kid: str | None) -> Any:
        if kid is not None and not isinstance(kid, str):
            raise jwt.InvalidTokenError("invalid key id")
        known = kid in self._keys or (kid is None and len(self._keys) == 1)
        if (self._keys and self._is_stale()) or (not known and self._spend_refetch()):
            await self._refresh(self._fetched_at)
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if kid not in self._keys:
            raise jwt.InvalidTokenError("unknown signing key")
        return self._keys[kid]

    def _is_stale(self) -> bool:
        return time.monotonic() - self._fetched_at > self.cache_seconds

    def _spend_refetch(self) -> bool:
        now = time.monotonic()
        refill = (now - self._budget_at) * self.refetches_per_minute / 60
        self._budget, self._budget_at = min(float(self.refetches_per_minute), self._budget + refill), now
        if self._budget < 1:
            return False
        self._budget -= 1
        return True

    async def _refresh(self, seen: float) -> None:
        async with self._lock:
            if self._fetched_at != seen:
                return  # another request refreshed while this one waited: one download serves both
            http = self._http or httpx.AsyncClient(timeout=5.0)
            try:
                response = await http.get(self.url)
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                if self._keys:
                    # Keep serving the cached keys while the issuer is unreachable, without retrying on every request.
                    self._fetched_at = time.monotonic()
                    return
                raise jwt.InvalidTokenError(f"cannot fetch JWKS: {exc}") from exc
            finally:
                if self._http is None:
                    await http.aclose()
            self._keys = _parse_jwks(document)
            self._fetched_at = time.monotonic()


def _parse_jwks(document: object) -> dict[str, Any]:
    """The usable signing keys; entries we cannot use (other types, malformed) are skipped, not fatal."""
    entries = document.get("keys") if isinstance(document, dict) else None
    keys: dict[str, Any] = {}
    for jwk in entries if isinstance(entries, list) else []:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or jwk.get("kty") not in {"RSA", "EC"}:
            continue
        try:
            keys[str(jwk.get("kid", ""))] = jwt.PyJWK.from_dict(jwk).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
    return keys


async def decode_external_token(client: JWKSClient, token: str, *, issuer: str, audience: str | None) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    if header.get("alg") not in ASYMMETRIC_ALGORITHMS:
        # Refusing HS* here is what stops algorithm confusion (a public key used as an HMAC secret).
        raise jwt.InvalidTokenError("algorithm not allowed for external issuer")
    key = await client.key_for(header.get("kid"))
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[header["alg"]],
        issuer=issuer,
        audience=audience,
        leeway=5,
        options={"require": ["exp", "iat", "sub", "iss"], "verify_aud": audience is not None},
    )
    return claims
