"""Webhook signatures: Standard Webhooks (Polar) and Stripe-Signature, with a replay window.

Both sign the raw body with HMAC-SHA256 together with a timestamp; a delivery outside the tolerance is
refused even when correctly signed, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from runplane.numbers import ascii_int

MAX_SIGNATURE_HEADER = 4096


class SignatureError(Exception):
    """Missing headers (`malformed`), or a signature or timestamp that does not verify."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.malformed = malformed


def standard_webhook_key(secret: str) -> bytes:
    """`whsec_<base64>` is the Standard Webhooks form; a bare string (as Polar shows it) is used as-is."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except (ValueError, binascii.Error):
            pass
    return secret.encode()


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_webhook_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_standard(secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: int) -> str:
    """Checks webhook-id / webhook-timestamp / webhook-signature; returns the message id."""
    msg_id = headers.get("webhook-id", "")
    raw_ts = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not raw_ts or not signatures or len(msg_id) > 200 or len(signatures) > MAX_SIGNATURE_HEADER:
        raise SignatureError(
            "Missing or malformed webhook-id, webhook-timestamp or webhook-signature header", malformed=True
        )
    timestamp = _timestamp(raw_ts, now, tolerance)
    expected = sign_standard(secret, msg_id, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures.split()):
        raise SignatureError("Webhook signature does not match")
    return msg_id


def sign_stripe(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_stripe(secret: str, header: str | None, body: bytes, *, now: float, tolerance: int) -> None:
    if not header or len(header) > MAX_SIGNATURE_HEADER:
        raise SignatureError("Missing or malformed Stripe-Signature header", malformed=True)
    parts = [item.partition("=") for item in header.split(",")]
    raw_ts = next((value.strip() for key, _, value in parts if key.strip() == "t"), "")
    candidates = [value.strip() for key, _, value in parts if key.strip() == "v1"]
    if not raw_ts or not candidates:
        raise SignatureError("Stripe-Signature needs t= and v1= elements", malformed=True)
    timestamp = _timestamp(raw_ts, now, tolerance)
    expected = sign_stripe(secret, timestamp, body).rsplit("v1=", 1)[1].encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in candidates):
        raise SignatureError("Webhook signature does not match")


def _timestamp(raw: str, now: float, tolerance: int) -> int:
    timestamp = ascii_int(raw, max_digits=12)
    if timestamp is None:
        raise SignatureError("Webhook timestamp is not a Unix time", malformed=True)
    if abs(now - timestamp) > tolerance:
        raise SignatureError("Webhook timestamp is outside the tolerance window (replayed or clock skew)")
    return timestamp
