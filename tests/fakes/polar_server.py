"""A real local HTTP server speaking the parts of Polar's API that runplane uses, and sending Polar's
webhooks (Standard Webhooks signatures) to a runplane server the way Polar does.

    async with FakePolarServer(token="polar_pat_test", webhook_secret=SECRET) as polar:
        ...  # runplane configured with RUNPLANE_POLAR_API_URL=polar.base_url
        subscription = polar.complete_checkout(checkout_id)
        response = await polar.deliver(webhook_url, "subscription.active", subscription)

Also the home of `BackgroundServer`, the uvicorn-in-a-thread base the Stripe fake shares.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runplane.billing.signatures import sign_standard


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class BackgroundServer:
    """uvicorn on a free 127.0.0.1 port in a daemon thread: real TCP, usable from the test's event loop."""

    app: Starlette

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[Recorded] = []
        self.failures: deque[int] = deque()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, status: int, times: int = 1) -> None:
        self.failures.extend([status] * times)

    async def start(self) -> "BackgroundServer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{type(self).__name__} did not start")
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            await asyncio.to_thread(self._thread.join, 10)
            self._server = self._thread = None

    async def __aenter__(self) -> "BackgroundServer":
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def recorded(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def _injected_failure(self) -> Response | None:
        if self.failures:
            status = self.failures.popleft()
            return JSONResponse(
                {"error": {"type": "api_error", "message": f"injected {status}"}, "detail": f"injected {status}"},
                status,
            )
        return None


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class FakePolarServer(BackgroundServer):
    def __init__(self, *, token: str, webhook_secret: str, products: set[str] | None = None) -> None:
        super().__init__()
        self.token = token
        self.webhook_secret = webhook_secret
        self.products = products  # None: any product id is accepted
        self.checkouts: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.app = Starlette(
            routes=[
                Route("/v1/checkouts/", self._create_checkout, methods=["POST"]),
                Route("/v1/checkouts/{checkout_id}", self._get_checkout, methods=["GET"]),
                Route("/v1/subscriptions/{subscription_id}", self._update_subscription, methods=["PATCH"]),
            ]
        )

    # ---- API -------------------------------------------------------------------------------------

    async def _create_checkout(self, request: Request) -> Response:
        body = await self._record(request)
        if (refusal := self._refuse(request)) is not None:
            return refusal
        products = body.get("products")
        if not isinstance(products, list) or not products or not all(isinstance(p, str) for p in products):
            return _validation_error("products", "at least one product id is required")
        if self.products is not None and products[0] not in self.products:
            return _validation_error("products", f"product {products[0]} does not exist")
        checkout_id = f"chk_{uuid.uuid4().hex[:16]}"
        checkout = {
            "id": checkout_id,
            "status": "open",
            "url": f"{self.base_url}/checkout/{checkout_id}",
            "client_secret": f"polar_c_{uuid.uuid4().hex}",
            "product_id": products[0],
            "products": products,
            "success_url": body.get("success_url"),
            "return_url": body.get("return_url"),
            "customer_email": body.get("customer_email"),
            "external_customer_id": body.get("external_customer_id"),
            "metadata": body.get("metadata") or {},
            "created_at": _iso(datetime.now(UTC)),
            "expires_at": _iso(datetime.now(UTC) + timedelta(hours=1)),
        }
        self.checkouts[checkout_id] = checkout
        return JSONResponse(checkout, 201)

    async def _get_checkout(self, request: Request) -> Response:
        await self._record(request)
        if (refusal := self._refuse(request)) is not None:
            return refusal
        checkout = self.checkouts.get(request.path_params["checkout_id"])
        return JSONResponse(checkout) if checkout else JSONResponse({"detail": "Not found"}, 404)

    async def _update_subscription(self, request: Request) -> Response:
        body = await self._record(request)
        if (refusal := self._refuse(request)) is not None:
            return refusal
        sub = self.subscriptions.get(request.path_params["subscription_id"])
        if sub is None:
            return JSONResponse({"type": "ResourceNotFound", "detail": "Not found"}, 404)
        if "product_id" in body:
            sub["product_id"] = body["product_id"]
        if "cancel_at_period_end" in body:
            sub["cancel_at_period_end"] = bool(body["cancel_at_period_end"])
        sub["modified_at"] = _iso(datetime.now(UTC))
        return JSONResponse(sub)

    async def _record(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.requests.append(
            Recorded(request.method, request.url.path, {k.lower(): v for k, v in request.headers.items()}, body)
        )
        return body if isinstance(body, dict) else {}

    def _refuse(self, request: Request) -> Response | None:
        if (failure := self._injected_failure()) is not None:
            return failure
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"error": "invalid_token", "error_description": "The access token is invalid"}, 401)
        return None

    # ---- what the customer and Polar do ------------------------------------------------------------

    def complete_checkout(self, checkout_id: str, *, status: str = "active") -> dict[str, Any]:
        """The customer paid: Polar creates the subscription (with the checkout's metadata) and returns it."""
        checkout = self.checkouts[checkout_id]
        checkout["status"] = "succeeded"
        now = datetime.now(UTC)
        sub_id = f"sub_{uuid.uuid4().hex[:16]}"
        sub = {
            "id": sub_id,
            "status": status,
            "amount": 2000,
            "currency": "usd",
            "recurring_interval": "month",
            "current_period_start": _iso(now),
            "current_period_end": _iso(now + timedelta(days=30)),
            "cancel_at_period_end": False,
            "customer_id": f"cus_{uuid.uuid4().hex[:12]}",
            "product_id": checkout["product_id"],
            "metadata": dict(checkout["metadata"]),
            "created_at": _iso(now),
            "modified_at": _iso(now),
            "customer": {"external_id": checkout["external_customer_id"], "email": checkout["customer_email"]},
        }
        self.subscriptions[sub_id] = sub
        checkout["subscription_id"] = sub_id
        return sub

    def signed_delivery(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        msg_id: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        occurred_at: datetime | None = None,
    ) -> tuple[dict[str, str], bytes]:
        body = json.dumps(
            {"type": event_type, "timestamp": _iso(occurred_at or datetime.now(UTC)), "data": data}
        ).encode()
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign_standard(secret or self.webhook_secret, msg_id, ts, body),
            "content-type": "application/json",
        }
        return headers, body

    async def deliver(self, url: str, event_type: str, data: dict[str, Any], **options: Any) -> httpx.Response:
        headers, body = self.signed_delivery(event_type, data, **options)
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(url, content=body, headers=headers)


def _validation_error(field: str, message: str) -> Response:
    return JSONResponse(
        {
            "error": "RequestValidationError",
            "detail": [{"loc": ["body", field], "msg": message, "type": "value_error"}],
        },
        422,
    )
