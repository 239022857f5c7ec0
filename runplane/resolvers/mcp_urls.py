"""Integration profiles' MCP URLs are credentials, so they are stored sealed (runplane/billing/crypto.py).

Composio serves a profile's connected tools (the user's mail, repositories, calendars...) to whoever holds its
MCP URL, unless the Composio project requires an API key for MCP (opt-in, or the default for organisations made
since March 2026). A URL stored before they were sealed reads as it is until `runplane rotate-encryption-key`
seals it (runplane/resolvers/encryption.py)."""

from __future__ import annotations

import logging
import uuid

from runplane.billing.crypto import DecryptionFailed, is_sealed, secret_box
from runplane.config import Settings
from runplane.models import IntegrationProfile

log = logging.getLogger("runplane.integrations")


def associated_data(owner_id: uuid.UUID) -> str:
    # Bound into the ciphertext: a value copied onto another user's profile does not decrypt.
    return f"runplane:mcp-url:{owner_id}"


def seal_mcp_url(settings: Settings, owner_id: uuid.UUID, url: str | None) -> str | None:
    return None if url is None else secret_box(settings).encrypt(url, associated_data(owner_id))


def open_mcp_url(settings: Settings, row: IntegrationProfile) -> str | None:
    """The URL, or None when no key of the ring opens it (logged: RUNPLANE_ENCRYPTION_KEY changed?)."""
    stored = row.mcp_url
    if stored is None or not is_sealed(stored):
        return stored
    try:
        return secret_box(settings).decrypt(stored, associated_data(row.owner_id))
    except DecryptionFailed as error:
        log.warning("integration profile %s: MCP URL: %s", row.id, error)
        return None
