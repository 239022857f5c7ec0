"""Preview links' tokens: a short-lived HS256 JWT in the preview URL's path (an iframe loads it without an
Authorization header), signed with a key of its own derived from the JWT secret, so a preview token is never an
access token, nor the other way round."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import jwt

from runplane.errors import NotFound, Unauthenticated

PREVIEW_TYPE = "preview"


@dataclass(frozen=True)
class PreviewClaims:
    user_id: str
    sandbox_id: str
    port: int


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"runplane-preview-token", hashlib.sha256).digest()


def sign_preview_token(secret: str, claims: PreviewClaims, *, expires: int) -> str:
    """`expires`: the Unix time the link stops working."""
    payload = {
        "sub": claims.user_id,
        "sbx": claims.sandbox_id,
        "port": claims.port,
        "typ": PREVIEW_TYPE,
        "iat": int(time.time()),
        "exp": expires,
    }
    return jwt.encode(payload, _key(secret), algorithm="HS256")


def verify_preview_token(secret: str, token: str) -> PreviewClaims:
    """The token's claims; Unauthenticated once it expired (ask for a new link), NotFound for anything else."""
    try:
        claims = jwt.decode(
            token, _key(secret), algorithms=["HS256"], options={"require": ["exp", "sub", "sbx", "port"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("Preview link expired: ask for a new one") from None
    except jwt.InvalidTokenError:
        raise NotFound("Preview not found") from None
    if claims.get("typ") != PREVIEW_TYPE or not isinstance(claims["port"], int):
        raise NotFound("Preview not found")
    return PreviewClaims(str(claims["sub"]), str(claims["sbx"]), claims["port"])
