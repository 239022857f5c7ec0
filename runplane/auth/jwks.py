"""External issuers (Clerk-style): RS256/ES256 tokens verified against the issuer's JWKS."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import jwt

ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class JWKSClient:
    """Fetches and caches a JWKS document; refetches on an unknown `kid` (key rotation), at most every 30 s."""

    def __init__(self, url: str, *, cache_seconds: int = 300, http: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self._http = http
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> Any:
        if self._is_stale() or (kid not in self._keys and time.monotonic() - self._fetched_at > 30):
            await self._refresh()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if kid not in self._keys:
            raise jwt.InvalidTokenError("unknown signing key")
        return self._keys[kid]

    def _is_stale(self) -> bool:
        return not self._keys or time.monotonic() - self._fetched_at > self.cache_seconds

    async def _refresh(self) -> None:
        async with self._lock:
            http = self._http or httpx.AsyncClient(timeout=5.0)
            try:
                response = await http.get(self.url)
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                if self._keys:
                    return  # keep serving the cached keys while the issuer is unreachable
                raise jwt.InvalidTokenError(f"cannot fetch JWKS: {exc}") from exc
            finally:
                if self._http is None:
                    await http.aclose()
            self._keys = _parse_jwks(document)
            self._fetched_at = time.monotonic()


def _parse_jwks(document: dict[str, Any]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for jwk in document.get("keys", []):
        if jwk.get("use", "sig") != "sig" or jwk.get("kty") not in {"RSA", "EC"}:
            continue
        keys[jwk.get("kid", "")] = jwt.PyJWK.from_json(json.dumps(jwk)).key
    return keys


async def decode_external_token(
    client: JWKSClient, token: str, *, issuer: str, audience: str | None
) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    if header.get("alg") not in ASYMMETRIC_ALGORITHMS:
        # Refusing HS* here is what stops algorithm confusion (a public key used as an HMAC secret).
        raise jwt.InvalidTokenError("algorithm not allowed for external issuer")
    key = await client.key_for(header.get("kid"))
    options: dict[str, Any] = {"require": ["exp", "iat", "sub", "iss"], "verify_aud": audience is not None}
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=[header["alg"]], issuer=issuer, audience=audience, options=options, leeway=5
    )
    return claims
