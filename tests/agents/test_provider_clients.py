"""Provider client details: multi-line SSE `data:` (httpx-sse), malformed usage and chunks as provider errors,
one pooled HTTP client per provider (closed with the services), and Stripe's API version on every call."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from runplane.agents.providers import (
    ChatMessage,
    ContentDelta,
    Finished,
    ModelProviderError,
    OpenAICompatibleProvider,
    Usage,
    UsageReport,
    collect,
)
from runplane.agents.providers.openai_stream import StreamAssembler
from runplane.billing.gateways import payment_gateway
from runplane.billing.providers import PaymentProviderError
from runplane.billing.stripe import STRIPE_API_VERSION
from runplane.config import Settings
from runplane.services import Services
from tests.fakes.openai_server import FakeOpenAIServer, Turn
from tests.fakes.stripe_server import FakeStripeServer

HELLO = [ChatMessage("user", "Say hello")]


async def test_an_event_over_several_data_lines_is_one_chunk(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    openai_server.add_turn(Turn(content=["Hel", "lo"], usage=usage, multiline_data=True))
    reply = await collect(provider.stream_chat(HELLO, [], "m"))
    assert reply.events == [ContentDelta("Hel"), ContentDelta("lo"), UsageReport(Usage(5, 2, 7)), Finished("stop")]


@pytest.mark.parametrize(
    "usage",
    [{"prompt_tokens": "many"}, {"completion_tokens": -3}, {"total_tokens": 1.5}, {"prompt_tokens": [1]}],
)
async def test_malformed_usage_is_a_provider_error(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider, usage: dict[str, object]
) -> None:
    openai_server.add_turn(Turn(content=["hi"], usage=usage))
    with pytest.raises(ModelProviderError, match="malformed usage") as caught:
        await collect(provider.stream_chat(HELLO, [], "m"))
    assert not caught.value.retryable


@pytest.mark.parametrize(
    "data",
    [
        '{"choices": [{"delta": {"tool_calls": [{"index": "first"}]}}]}',
        '{"choices": "none"}',
        '{"choices": [{"delta": "text"}]}',
        "[1, 2]",
    ],
)
def test_malformed_chunks_are_provider_errors(data: str) -> None:
    with pytest.raises(ModelProviderError):
        StreamAssembler().feed_data(data)


async def test_each_provider_has_one_pooled_client_closed_with_the_services() -> None:
    services = Services(settings=Settings())
    stripe, polar = services.http("stripe"), services.http("polar")
    assert services.http("stripe") is stripe and polar is not stripe
    await services.close()
    assert stripe.is_closed and polar.is_closed
    assert not services.http("stripe").is_closed  # used again after a close: a new one
    await services.close()


async def test_stripe_calls_send_the_api_version_on_the_pooled_client() -> None:
    async with FakeStripeServer(secret_key="sk_test_x", webhook_secret="whsec_x", prices={"price_pro"}) as fake:
        settings = Settings(stripe_api_url=fake.base_url, stripe_secret_key="sk_test_x")
        async with httpx.AsyncClient() as pooled:
            gateway = payment_gateway(settings, "stripe", pooled)
            with contextlib.suppress(PaymentProviderError):  # any call will do: an unknown subscription is a 404
                await gateway.set_cancel_at_period_end("sub_missing", True)
    sent = fake.requests[-1]
    assert sent.headers["stripe-version"] == STRIPE_API_VERSION
