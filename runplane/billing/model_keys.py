"""Users' own model keys (BYOK) as the engine sees them: whether a user stored one, and its plaintext for a run.

Both the operations (resolvers/byok.py: store, test, delete) and the run engine (agents/keys.py: the provider
a run talks to; billing/ledger.py: which ledger a run's tokens go to) need these rules, so they live here, below
both. Keys are AES-GCM encrypted at rest with the user and provider bound into the ciphertext."""

from __future__ import annotations

import logging
import uuid

from runplane.billing.crypto import DecryptionFailed, secret_box
from runplane.config import Settings
from runplane.errors import Conflict, NotFound
from runplane.models import UserModelKey

log = logging.getLogger("runplane.byok")
PROVIDER = "openrouter"


def is_scripted(model: str) -> bool:
    """Offline scripted models never use a user's key (nor spend tokens of one)."""
    return model.startswith("scripted/")


def associated_data(user_id: uuid.UUID) -> str:
    # Bound into the ciphertext: a value copied onto another user's row does not decrypt.
    return f"runplane:model-key:{user_id}:{PROVIDER}"


async def has_key(user_id: uuid.UUID) -> bool:
    return await UserModelKey.exists(user_id=user_id, provider=PROVIDER)


async def stored_key(settings: Settings, user_id: uuid.UUID, *, required: bool = False) -> str | None:
    """The user's key in plaintext; None (or NotFound/Conflict when `required`) if absent or undecryptable."""
    row = await UserModelKey.get_or_none(user_id=user_id, provider=PROVIDER)
    if row is None:
        if required:
            raise NotFound("No OpenRouter key is stored")
        return None
    try:
        return secret_box(settings).decrypt(row.ciphertext, associated_data(user_id))
    except DecryptionFailed:
        log.warning("stored model key of user %s cannot be decrypted (encryption key changed?)", user_id)
        if required:
            raise Conflict("The stored key cannot be decrypted any more: store it again") from None
        return None
