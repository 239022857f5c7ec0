"""The built-in issuer: short-lived HS256 access tokens and opaque, rotating refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from runplane.config import Settings

ACCESS_ALGORITHM = "HS256"
REFRESH_PREFIX = "rpr_"


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    abilities: list[str]


def issue_access_token(settings: Settings, claims: AccessClaims, ttl_seconds: int | None = None) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(claims.user_id),
        "sid": str(claims.session_id),
        "abilities": sorted(claims.abilities),
        "iat": now,
        "exp": now + (ttl_seconds or settings.access_token_ttl_seconds),
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return jwt.encode(payload, settings.jwt_secret, algorithm=ACCESS_ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> dict[str, Any]:
    """Raises jwt.InvalidTokenError for anything but a valid, unexpired token of ours.

    Only HS256 is accepted: `alg: none` and RS/HS confusion fail the algorithm check.
    """
    claims: dict[str, Any] = jwt.decode(
        token,
        settings.jwt_secret,
        algorithms=[ACCESS_ALGORITHM],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        options={"require": ["exp", "iat", "sub", "sid", "iss", "aud"]},
    )
    if claims.get("typ") != "access":
        raise jwt.InvalidTokenError("not an access token")
    return claims


def new_refresh_token(settings: Settings, session_id: uuid.UUID) -> str:
    """`rpr_<session id hex>.<secret>.<mac>`: the session id lets us detect the reuse of a rotated token;
    the MAC proves we issued it, so a forged token naming someone's session cannot get that session revoked."""
    body = f"{REFRESH_PREFIX}{session_id.hex}.{secrets.token_urlsafe(32)}"
    return f"{body}.{_refresh_mac(settings, body)}"


def refresh_token_session_id(settings: Settings, token: str) -> uuid.UUID | None:
    """The session of a refresh token we issued; None for anything else (malformed or forged)."""
    if not token.startswith(REFRESH_PREFIX) or len(token) > 200:
        return None
    body, _, mac = token.rpartition(".")
    if not body or not hmac.compare_digest(mac.encode(), _refresh_mac(settings, body).encode()):
        return None
    try:
        return uuid.UUID(hex=body[len(REFRESH_PREFIX) :].split(".", 1)[0])
    except ValueError:
        return None


def _refresh_mac(settings: Settings, body: str) -> str:
    key = hashlib.sha256(b"runplane-refresh-token:" + settings.jwt_secret.encode()).digest()
    return base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()


def hash_refresh_token(token: str) -> str:
    # Refresh tokens are 256-bit random: a plain SHA-256 is enough (no dictionary to defend against).
    return hashlib.sha256(token.encode()).hexdigest()
