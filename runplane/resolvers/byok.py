"""Bring your own key: a user's OpenRouter key, AES-GCM encrypted at rest, shown only as a masked hint,
and used for that user's runs on non-scripted models (their tokens then do not spend the plan's allowance)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError

from runplane.agents.providers.base import ModelProvider, ProviderError
from runplane.agents.providers.openai_compatible import OPENROUTER_BASE_URL, OpenAICompatibleProvider, RetryPolicy
from runplane.auth.abilities import BILLING_READ, BILLING_WRITE
from runplane.billing.crypto import DecryptionFailed, mask_secret, secret_box
from runplane.config import Settings
from runplane.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from runplane.models import UsageEntry, UserModelKey
from runplane.resolvers import rate_limits
from runplane.resolvers.context import RequestContext

if TYPE_CHECKING:
    from runplane.models import AgentRun
    from runplane.services import Services

log = logging.getLogger("runplane.byok")
PROVIDER = "openrouter"
MIN_KEY, MAX_KEY = 16, 512
KEY_TESTS_PER_MINUTE = 10


def is_scripted(model: str) -> bool:
    return model.startswith("scripted/")


def key_base_url(settings: Settings) -> str:
    return settings.byok_base_url or settings.model_base_url or OPENROUTER_BASE_URL


def _associated(user_id: uuid.UUID) -> str:
    # Bound into the ciphertext: a value copied onto another user's row does not decrypt.
    return f"runplane:model-key:{user_id}:{PROVIDER}"


def _clean_key(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("key must be a string", field="key")
    key = value.strip()
    if not MIN_KEY <= len(key) <= MAX_KEY:
        raise InvalidInput(f"key must be {MIN_KEY} to {MAX_KEY} characters", field="key")
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise InvalidInput("key must be printable ASCII without spaces", field="key")
    return key


async def set_openrouter_key(ctx: RequestContext, *, key: object) -> UserModelKey:
    """Store (or replace) the caller's key; the plaintext is never stored nor returned."""
    user_id = ctx.require(BILLING_WRITE)
    clean = _clean_key(key)
    values: dict[str, Any] = dict(
        ciphertext=secret_box(ctx.settings).encrypt(clean, _associated(user_id)),
        hint=mask_secret(clean),
        last_tested_at=None,
        last_test_status=None,
        updated_at=datetime.now(UTC),
    )
    if not await UserModelKey.filter(user_id=user_id, provider=PROVIDER).update(**values):
        try:
            await UserModelKey.create(user_id=user_id, provider=PROVIDER, **values)
        except IntegrityError:  # a concurrent store won: ours replaces it
            await UserModelKey.filter(user_id=user_id, provider=PROVIDER).update(**values)
    return await UserModelKey.get(user_id=user_id, provider=PROVIDER)


async def openrouter_key_status(ctx: RequestContext) -> UserModelKey | None:
    user_id = ctx.require(BILLING_READ)
    return await UserModelKey.get_or_none(user_id=user_id, provider=PROVIDER)


def check_account(ctx: RequestContext, account_id: object) -> None:
    """Cheatcode's server-side proxy names the account (`?account_id=`, or in the body): the token decides whose
    key this is, and an account_id that is not the token's is "not found", never trusted."""
    if account_id is not None and account_id != "" and str(account_id) != str(ctx.user_id):
        raise NotFound("Account not found")


async def key_last_used(user_id: uuid.UUID) -> datetime | None:
    """When a run last spent tokens on the user's own key (the ledger says which key paid)."""
    entry = await UsageEntry.filter(user_id=user_id, source="byok").order_by("-created_at").first()
    return entry.created_at if entry is not None else None


async def delete_openrouter_key(ctx: RequestContext) -> bool:
    """True if a key was removed (deleting twice is not an error)."""
    user_id = ctx.require(BILLING_WRITE)
    return bool(await UserModelKey.filter(user_id=user_id, provider=PROVIDER).delete())


@dataclass
class KeyTestResult:
    valid: bool
    status: str  # ok | invalid
    source: str  # stored | provided
    label: str | None = None
    usage: float | None = None
    limit: float | None = None


async def test_openrouter_key(ctx: RequestContext, *, key: object = None) -> KeyTestResult:
    """Check a key against the provider's key endpoint: the one given, else the stored one."""
    user_id = ctx.require(BILLING_WRITE)
    provided = key is not None and key != ""
    plaintext = _clean_key(key) if provided else await _stored_key(ctx.settings, user_id, required=True)
    assert plaintext is not None
    await rate_limits.hit(ctx, "key tests", KEY_TESTS_PER_MINUTE)
    async with OpenAICompatibleProvider(
        key_base_url(ctx.settings), plaintext, timeout=10.0, retry=RetryPolicy(max_retries=1), name="byok"
    ) as provider:
        try:
            check = await provider.check_key()
        except ProviderError as exc:
            raise ServiceUnavailable(f"Could not check the key: {exc.message}") from None
    if not provided:
        await UserModelKey.filter(user_id=user_id, provider=PROVIDER).update(
            last_tested_at=datetime.now(UTC), last_test_status=check.status
        )
    return KeyTestResult(
        check.ok, check.status, "provided" if provided else "stored", check.label, check.usage, check.limit
    )


async def _stored_key(settings: Settings, user_id: uuid.UUID, *, required: bool = False) -> str | None:
    row = await UserModelKey.get_or_none(user_id=user_id, provider=PROVIDER)
    if row is None:
        if required:
            raise NotFound("No OpenRouter key is stored")
        return None
    try:
        return secret_box(settings).decrypt(row.ciphertext, _associated(user_id))
    except DecryptionFailed:
        log.warning("stored model key of user %s cannot be decrypted (encryption key changed?)", user_id)
        if required:
            raise Conflict("The stored key cannot be decrypted any more: store it again") from None
        return None


async def has_key(user_id: uuid.UUID) -> bool:
    return await UserModelKey.exists(user_id=user_id, provider=PROVIDER)


@asynccontextmanager
async def run_provider(services: "Services", run: "AgentRun") -> AsyncIterator[ModelProvider]:
    """The model provider for a run: the owner's own key for non-scripted models if they stored one,
    else the shared provider. A per-run provider is closed when the run ends."""
    key = None if is_scripted(run.model) else await _stored_key(services.settings, run.owner_id)  # type: ignore[attr-defined]
    if key is None:
        yield services.provider_for(run)
        return
    async with OpenAICompatibleProvider(key_base_url(services.settings), key, name="byok") as provider:
        yield provider
