"""Bring your own key: a user's OpenRouter key, AES-GCM encrypted at rest, shown only as a masked hint,
and used for that user's runs on non-scripted models (their tokens then do not spend the plan's allowance)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from runplane.agents.keys import key_base_url
from runplane.agents.providers.base import ModelProviderError
from runplane.agents.providers.openai_compatible import OpenAICompatibleProvider, RetryPolicy
from runplane.auth.abilities import BILLING_READ, BILLING_WRITE
from runplane.billing.crypto import mask_secret, secret_box
from runplane.billing.model_keys import PROVIDER as PROVIDER  # re-exported: the transports name the provider
from runplane.billing.model_keys import associated_data, stored_key
from runplane.clock import now
from runplane.errors import InvalidInput, NotFound, ServiceUnavailable
from runplane.models import UsageEntry, UserModelKey
from runplane.resolvers import rate_limits
from runplane.resolvers.context import RequestContext
from runplane.resolvers.validation import RawId

MIN_KEY, MAX_KEY = 16, 512
KEY_TESTS_PER_MINUTE = 10


def _clean_key(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("key must be a string", field="key")
    key = value.strip()
    if not MIN_KEY <= len(key) <= MAX_KEY:
        raise InvalidInput(f"key must be {MIN_KEY} to {MAX_KEY} characters", field="key")
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise InvalidInput("key must be printable ASCII without spaces", field="key")
    return key


async def set_openrouter_key(ctx: RequestContext, *, key: str) -> UserModelKey:
    """Store (or replace) the caller's key; the plaintext is never stored nor returned."""
    user_id = ctx.require(BILLING_WRITE)
    clean = _clean_key(key)
    values: dict[str, Any] = dict(
        ciphertext=secret_box(ctx.settings).encrypt(clean, associated_data(user_id)),
        hint=mask_secret(clean),
        last_tested_at=None,
        last_test_status=None,
        updated_at=now(),
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


def check_account(ctx: RequestContext, account_id: RawId | None) -> None:
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


async def test_openrouter_key(ctx: RequestContext, *, key: str | None = None) -> KeyTestResult:
    """Check a key against the provider's key endpoint: the one given, else the stored one."""
    user_id = ctx.require(BILLING_WRITE)
    provided = key is not None and key != ""
    plaintext = _clean_key(key) if provided else await stored_key(ctx.settings, user_id, required=True)
    assert plaintext is not None
    await rate_limits.hit(ctx, "key tests", KEY_TESTS_PER_MINUTE)
    async with OpenAICompatibleProvider(
        key_base_url(ctx.settings),
        plaintext,
        timeout=10.0,
        retry=RetryPolicy(max_retries=1),
        name="byok",
        http_client=ctx.services.http("byok"),
    ) as provider:
        try:
            check = await provider.check_key()
        except ModelProviderError as exc:
            raise ServiceUnavailable(f"Could not check the key: {exc.message}") from None
    if not provided:
        await UserModelKey.filter(user_id=user_id, provider=PROVIDER).update(
            last_tested_at=now(), last_test_status=check.status
        )
    return KeyTestResult(
        check.ok, check.status, "provided" if provided else "stored", check.label, check.usage, check.limit
    )
