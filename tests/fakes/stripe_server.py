"""A real local HTTP server speaking the parts of Stripe's API that runplane uses (form-encoded requests,
secret key as basic or bearer auth), and sending Stripe webhooks signed with Stripe-Signature.

    async with FakeStripeServer(secret_key="sk_test_x", webhook_secret="whsec_x", prices={"price_pro"}) as stripe:
        session, subscription = stripe.complete_checkout(session_id)
        await stripe.deliver(webhook_url, "checkout.session.completed", session)
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runplane.billing.signatures import sign_stripe
from tests.fakes.polar_server import BackgroundServer, Recorded


class FakeStripeServer(BackgroundServer):
    def __init__(self, *, secret_key: str, webhook_secret: str, prices: set[str] | None = None) -> None:
        super().__init__()
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.prices = prices  # None: any price id is accepted
        self.sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.app = Starlette(
            routes=[
                Route("/v1/checkout/sessions", self._create_session, methods=["POST"]),
                Route("/v1/subscriptions/{subscription_id}", self._subscription, methods=["GET", "POST"]),
            ]
        )

    # ---- API -------------------------------------------------------------------------------------

    async def _create_session(self, request: Request) -> Response:
        form = await self._record(request)
        if (refusal := self._refuse(request)) is not None:
            return refusal
        for required in ("mode", "line_items[0][price]", "success_url"):
            if not form.get(required):
                return _invalid(f"Missing required param: {required}.", required)
        price = form["line_items[0][price]"]
        if self.prices is not None and price not in self.prices:
            return _invalid(f"No such price: '{price}'", "line_items[0][price]")
        session_id = f"cs_test_{uuid.uuid4().hex}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": form["mode"],
            "status": "open",
            "payment_status": "unpaid",
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            "success_url": form["success_url"],
            "cancel_url": form.get("cancel_url"),
            "client_reference_id": form.get("client_reference_id"),
            "customer_email": form.get("customer_email"),
            "metadata": _nested(form, "metadata"),
            "subscription_data_metadata": _nested(form, "subscription_data[metadata]"),
            "price": price,
            "expires_at": int(time.time()) + 24 * 3600,
            "created": int(time.time()),
            "subscription": None,
            "customer": None,
        }
        self.sessions[session_id] = session
        return JSONResponse({k: v for k, v in session.items() if k not in ("subscription_data_metadata", "price")})

    async def _subscription(self, request: Request) -> Response:
        form = await self._record(request)
        if (refusal := self._refuse(request)) is not None:
            return refusal
        sub = self.subscriptions.get(request.path_params["subscription_id"])
        if sub is None:
            return JSONResponse(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "resource_missing",
                        "message": "No such subscription",
                    }
                },
                404,
            )
        if request.method == "POST":
            if "items[0][price]" in form:
                item = sub["items"]["data"][0]
                if form.get("items[0][id]") != item["id"]:
                    return _invalid("Replacing a price needs the subscription item's id", "items[0][id]")
                item["price"] = {"id": form["items[0][price]"], "object": "price"}
            if "cancel_at_period_end" in form:
                sub["cancel_at_period_end"] = form["cancel_at_period_end"] == "true"
        return JSONResponse(sub)

    async def _record(self, request: Request) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.form()).items()} if request.method == "POST" else {}
        self.requests.append(
            Recorded(request.method, request.url.path, {k.lower(): v for k, v in request.headers.items()}, form)
        )
        return form

    def _refuse(self, request: Request) -> Response | None:
        if (failure := self._injected_failure()) is not None:
            return failure
        auth = request.headers.get("authorization", "")
        basic = "Basic " + base64.b64encode(f"{self.secret_key}:".encode()).decode()
        if auth not in (basic, f"Bearer {self.secret_key}"):
            return JSONResponse(
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}, 401
            )
        return None

    # ---- what the customer and Stripe do -----------------------------------------------------------

    def complete_checkout(self, session_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The customer paid: the session completes and a subscription exists. Returns (session, subscription)."""
        session = self.sessions[session_id]
        now = int(time.time())
        sub_id, customer = f"sub_{uuid.uuid4().hex[:14]}", f"cus_{uuid.uuid4().hex[:14]}"
        sub = {
            "id": sub_id,
            "object": "subscription",
            "status": "active",
            "customer": customer,
            "cancel_at_period_end": False,
            "metadata": dict(session["subscription_data_metadata"]),
            "created": now,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": f"si_{uuid.uuid4().hex[:14]}",
                        "object": "subscription_item",
                        "price": {"id": session["price"], "object": "price"},
                        "current_period_start": now,
                        "current_period_end": now + 30 * 24 * 3600,
                    }
                ],
            },
        }
        self.subscriptions[sub_id] = sub
        session.update(status="complete", payment_status="paid", subscription=sub_id, customer=customer)
        public = {k: v for k, v in session.items() if k not in ("subscription_data_metadata", "price")}
        return public, sub

    def signed_delivery(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        event_id: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        created: int | None = None,
    ) -> tuple[dict[str, str], bytes]:
        event = {
            "id": event_id or f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "type": event_type,
            "api_version": "2025-03-31.basil",
            "created": created if created is not None else int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
        body = json.dumps(event).encode()
        ts = int(time.time()) if timestamp is None else timestamp
        return {
            "stripe-signature": sign_stripe(secret or self.webhook_secret, ts, body),
            "content-type": "application/json",
        }, body

    async def deliver(self, url: str, event_type: str, obj: dict[str, Any], **options: Any) -> httpx.Response:
        headers, body = self.signed_delivery(event_type, obj, **options)
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(url, content=body, headers=headers)


def _nested(form: dict[str, str], prefix: str) -> dict[str, str]:
    """metadata[user_id]=x -> {"user_id": "x"} for the given bracketed prefix."""
    return {
        key[len(prefix) + 1 : -1]: value
        for key, value in form.items()
        if key.startswith(prefix + "[") and key.endswith("]")
    }


def _invalid(message: str, param: str) -> Response:
    return JSONResponse({"error": {"type": "invalid_request_error", "message": message, "param": param}}, 400)
