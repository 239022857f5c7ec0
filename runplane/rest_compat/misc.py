"""Feature flags, the welcome email, and /api/inngest (the run queue's introspection)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from runplane.clock import iso
from runplane.resolvers import email, feature_flags, queue
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.bodies import Body, parse_body, text
from runplane.rest_compat.common import ok
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import BOOL, STR, obj

FLAG = obj(
    ["name", "flag_name", "enabled"],
    name=STR,
    flag_name=STR,
    enabled=BOOL,
    description=STR,
    details=obj(["description"], description=STR),
)


@api.add(
    "GET",
    "/feature-flags",
    "All feature flags (public: server-wide switches; 404 unless feature flags are enabled)",
    tag="feature-flags",
    response=obj(["flags"], flags={"type": "object"}),
    errors=(404,),
    auth="public",
)
async def list_flags(request: Request, ctx: RequestContext) -> Response:
    flags = await feature_flags.list_flags(ctx)
    return ok({"flags": {f.name: f.enabled for f in flags}, "details": [flag_json(f) for f in flags]})


@api.add(
    "GET", "/feature-flags/{flag_name}", "One feature flag (public)", tag="feature-flags", response=FLAG, auth="public"
)
async def get_flag(request: Request, ctx: RequestContext) -> Response:
    flag = await feature_flags.get_flag(ctx, name=request.path_params["flag_name"])
    return ok(flag_json(flag))


def flag_json(flag: feature_flags.FeatureFlag) -> dict[str, Any]:
    # `flag_name` and `details` are what Cheatcode's web app reads (frontend/src/lib/feature-flags.ts FeatureFlag).
    details = {"description": flag.description}
    return {"name": flag.name, "flag_name": flag.name, "enabled": flag.enabled, **details, "details": details}


class WelcomeEmail(Body):
    name: str | None = text(email.MAX_NAME)
    force: bool = False


@api.add(
    "POST",
    "/send-welcome-email",
    "Send the welcome email to the caller (once, unless force=true)",
    tag="email",
    body=WelcomeEmail,
    errors=(502, 503),
)  # SMTP refused; not configured
async def send_welcome_email(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, WelcomeEmail, required=False)
    delivery, sent = await email.send_welcome_email(ctx, name=body.name, force=body.force)
    return ok(
        {
            "success": True,
            "sent": sent,
            "already_sent": not sent,
            "recipient": delivery.recipient,
            "sent_at": iso(delivery.sent_at),
            "send_count": delivery.send_count,
        }
    )


@api.add(
    "GET",
    "/inngest",
    "The run queue's introspection: backend, queued and running runs (admin)",
    tag="admin",
    auth="admin",
)
async def inngest(request: Request, ctx: RequestContext) -> Response:
    return ok(await queue.queue_info(ctx))
