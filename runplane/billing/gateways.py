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
    gateway: type[PolarProvider | StripeProvider]
    if name == PaymentProvider.POLAR:
        gateway, credentials = PolarProvider, (settings.polar_access_token, settings.polar_webhook_secret)
        api_url = settings.polar_api_url
    elif name == PaymentProvider.STRIPE:
        gateway, credentials = StripeProvider, (settings.stripe_secret_key, settings.stripe_webhook_secret)
        api_url = settings.stripe_api_url
    else:
        raise ValueError(f"unknown payment provider {name!r} (expected one of {', '.join(PROVIDERS)})")
    return gateway(api_url, *credentials, tolerance=settings.webhook_tolerance_seconds, http=http)
