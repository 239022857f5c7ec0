"""Payment-provider webhooks (Polar and Stripe, at the paths Cheatcode's API documents): authenticated by their
signature, not by a user."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from runplane.resolvers import webhooks as ops
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.common import ok
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import STR, obj

TAG = "webhooks"
OUTCOME = obj(
    ["status", "event_id", "event_type"],
    status={"type": "string", "enum": ["processed", "duplicate", "ignored", "stale"]},
    event_id=STR,
    event_type=STR,
)
EVENT = {"type": "object", "description": "The provider's event, signed over the raw body"}
WEBHOOK_ERRORS = (403, 503)  # a bad signature; the provider's webhook secret is not configured


async def _receive(request: Request, ctx: RequestContext, provider: str) -> Response:
    # The raw bytes: the signature covers them exactly as sent.
    outcome = await ops.process_webhook(ctx, provider=provider, headers=request.headers, body=await request.body())
    return ok({"status": outcome.status, "event_id": outcome.event_id, "event_type": outcome.event_type})


@api.add(
    "POST",
    "/webhooks/polar",
    "Polar billing webhook (Standard Webhooks signature)",
    auth="webhook",
    tag=TAG,
    body=EVENT,
    response=OUTCOME,
    errors=WEBHOOK_ERRORS,
)
async def polar(request: Request, ctx: RequestContext) -> Response:
    return await _receive(request, ctx, "polar")


@api.add(
    "POST",
    "/webhooks/stripe",
    "Stripe billing webhook (Stripe-Signature)",
    auth="webhook",
    tag=TAG,
    body=EVENT,
    response=OUTCOME,
    errors=WEBHOOK_ERRORS,
)
async def stripe(request: Request, ctx: RequestContext) -> Response:
    return await _receive(request, ctx, "stripe")
