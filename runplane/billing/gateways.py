"""Choosing a payment provider's client by name: the one module that knows every provider (each imports
providers.py, so the choice cannot live there without an import cycle)."""

from __future__ import annotations

import httpx

from runplane.billing.plans import PROVIDERS
from runplane.billing.polar import PolarProvider
from runplane.billing.providers import PaymentGateway
from runplane.billing.stripe import StripeProvider
from runplane.config import Settings
from runplane.models.choices import PaymentProvider


def payment_gateway(settings: Settings, name: str, http: httpx.AsyncClient | None = None) -> PaymentGateway:
    """The named provider's client; `http` is the pooled client to call it with (None: verifying webhooks only)."""
    if name == PaymentProvider.POLAR:
        return PolarProvider(
            settings.polar_api_url,
            settings.polar_access_token,
            settings.polar_webhook_secret,
            tolerance=settings.webhook_tolerance_seconds,
            http=http,
        )
    if name == PaymentProvider.STRIPE:
        return StripeProvider(
            settings.stripe_api_url,
            settings.stripe_secret_key,
            settings.stripe_webhook_secret,
            tolerance=settings.webhook_tolerance_seconds,
            http=http,
        )
    raise ValueError(f"unknown payment provider {name!r} (expected one of {', '.join(PROVIDERS)})")
