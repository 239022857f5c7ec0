"""Model provider for any server speaking the OpenAI chat-completions API.

OpenRouter, OpenAI, Ollama (/v1), vLLM and LiteLLM all accept the same streaming request, so
one client covers them; only `base_url` and the key differ. A user's own key is simply another
instance of this class.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from httpx_sse import EventSource, SSEError

from runplane.clock import now

from .base import ChatMessage, ModelInfo, ModelProviderError, ProviderEvent, ToolCall, ToolSpec
from .openai_stream import StreamAssembler

log = logging.getLogger(__name__)

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
# Read timeout is the longest silence allowed between two stream chunks, not the whole reply.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    backoff_base: float = 0.5
    max_backoff: float = 20.0
    # A server asking us to wait longer than this is better handled by rescheduling the run
    # than by holding a worker; we give up and surface `retry_after` to the caller.
    max_retry_after: float = 60.0

    def delay(self, attempt: int, error: ModelProviderError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if not error.retryable or attempt >= self.max_retries:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        # Jitter spreads out workers that all failed on the same outage.
        return min(self.max_backoff, self.backoff_base * 2.0**attempt) * random.uniform(0.5, 1.0)


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """Result of OpenRouter's GET /key: whether the key works, and its spend/limit."""

    status: Literal["ok", "invalid"]
    label: str | None = None
    usage: float | None = None
    limit: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class OpenAICompatibleProvider:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        name: str = "openai",
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self._api_key = api_key
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._default_headers = dict(default_headers or {})
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient()
        self._retry = retry or RetryPolicy()
        self._sleep = sleep  # injectable so tests can check backoff without waiting

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatibleProvider({self.base_url!r}, name={self.name!r})"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> OpenAICompatibleProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ---- chat --------------------------------------------------------------------------------

    async def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        model: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncIterator[ProviderEvent]:
        body = chat_request_body(messages, tools, model, max_tokens, temperature)
        attempt = 0
        while True:
            emitted = False
            try:
                async with aclosing(self._stream_once(body)) as events:
                    async for event in events:
                        emitted = True
                        yield event
                return
            except ModelProviderError as err:
                # Once output reached the caller a retry would duplicate it: surface instead.
                if emitted:
                    raise
                await self._backoff_or_raise(err, attempt)
                attempt += 1

    async def _stream_once(self, body: dict[str, Any]) -> AsyncGenerator[ProviderEvent, None]:
        assembler = StreamAssembler()
        headers = self._headers() | {"Accept": "text/event-stream"}
        try:
            async with self._client.stream(
                "POST",
                self._url("/chat/completions"),
                json=body,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                await _raise_for_status(response)
                async with aclosing(EventSource(response).aiter_sse()) as server_events:
                    async for server_event in server_events:
                        for event in assembler.feed_data(server_event.data):
                            yield event
                        if assembler.done:
                            break
        except httpx.TransportError as exc:
            raise _transport_error(exc) from exc
        except SSEError as exc:  # not text/event-stream
            raise ModelProviderError(f"model server did not stream: {exc}", retryable=False) from exc
        for event in assembler.finish():
            yield event

    # ---- catalogue and keys ------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        body = await self._get_json("/models")
        items = body.get("data") if isinstance(body, dict) else body
        return [self._model_info(item) for item in items or [] if isinstance(item, dict)]

    def _model_info(self, item: dict[str, Any]) -> ModelInfo:
        # OpenRouter sends context_length; vLLM calls it max_model_len; OpenAI sends neither.
        context = item.get("context_length") or item.get("max_model_len")
        pricing = item.get("pricing")
        return ModelInfo(
            id=str(item["id"]),
            name=str(item.get("name") or item["id"]),
            provider=self.name,
            context_length=int(context) if context else None,
            pricing=pricing if isinstance(pricing, dict) else None,
        )

    async def check_key(self) -> KeyCheck:
        """Validate the key with OpenRouter's GET /key (other servers may not implement it)."""
        try:
            body = await self._get_json("/key")
        except ModelProviderError as err:
            if err.status in (401, 403):
                return KeyCheck("invalid")
            raise
        data = body.get("data") if isinstance(body, dict) else None
        data = data if isinstance(data, dict) else {}
        return KeyCheck(
            "ok",
            label=data.get("label"),
            usage=_number(data.get("usage")),
            limit=_number(data.get("limit")),
            data=data,
        )

    # ---- plumbing ----------------------------------------------------------------------------

    async def _get_json(self, path: str) -> Any:
        attempt = 0
        while True:
            try:
                return await self._get_json_once(path)
            except ModelProviderError as err:
                await self._backoff_or_raise(err, attempt)
                attempt += 1

    async def _get_json_once(self, path: str) -> Any:
        try:
            response = await self._client.get(self._url(path), headers=self._headers(), timeout=self._timeout)
        except httpx.TransportError as exc:
            raise _transport_error(exc) from exc
        await _raise_for_status(response)
        try:
            return response.json()
        except ValueError as exc:
            raise ModelProviderError(f"invalid JSON from {path}", response.status_code) from exc

    async def _backoff_or_raise(self, err: ModelProviderError, attempt: int) -> None:
        delay = self._retry.delay(attempt, err)
        if delay is None:
            raise err
        log.warning("%s: %s; retry %d in %.2fs", self.name, err.message, attempt + 1, delay)
        await self._sleep(delay)

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _headers(self) -> dict[str, str]:
        headers = dict(self._default_headers)
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers


# ---- wire format -----------------------------------------------------------------------------


def chat_request_body(
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolSpec],
    model: str,
    max_tokens: int | None,
    temperature: float | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [message_to_wire(m) for m in messages],
        "stream": True,
        # Without this the stream carries no token counts, and billing needs them.
        "stream_options": {"include_usage": True},
    }
    if tools:
        body["tools"] = [tool_to_wire(t) for t in tools]
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    return body


def message_to_wire(message: ChatMessage) -> dict[str, Any]:
    # Only assistant messages with tool calls may have null content; others need a string.
    content = message.content
    if content is None and not (message.role == "assistant" and message.tool_calls):
        content = ""
    wire: dict[str, Any] = {"role": message.role, "content": content}
    if message.tool_calls:
        wire["tool_calls"] = [tool_call_to_wire(c) for c in message.tool_calls]
    if message.tool_call_id:
        wire["tool_call_id"] = message.tool_call_id
    if message.name:
        wire["name"] = message.name
    return wire


def tool_call_to_wire(call: ToolCall) -> dict[str, Any]:
    # Echo malformed arguments as "{}": some upstreams (e.g. Anthropic behind OpenRouter)
    # reject a history containing invalid JSON, which would wedge the whole thread.
    raw = call.raw_arguments if _is_json_object(call.raw_arguments) else json.dumps(call.arguments)
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": raw}}


def tool_to_wire(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


# ---- errors ----------------------------------------------------------------------------------


async def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    await response.aread()
    raise error_from_response(response.status_code, response.headers, response.text)


def error_from_response(status: int, headers: Mapping[str, str], text: str) -> ModelProviderError:
    message, code = _error_detail(text)
    retryable = status in (408, 409, 425, 429) or status >= 500
    if code == "insufficient_quota":  # OpenAI's 429 for an empty balance: waiting won't help
        retryable = False
    retry_after = parse_retry_after(headers.get("retry-after"))
    return ModelProviderError(f"HTTP {status}: {message}", status, retryable, retry_after=retry_after)


def _error_detail(text: str) -> tuple[str, str | None]:
    try:
        body = json.loads(text)
    except ValueError:
        return text[:500] or "no body", None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        return str(error.get("message") or error), str(code) if code is not None else None
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"]), None
    return text[:500], None


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either delay-seconds or an HTTP-date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


def _transport_error(exc: httpx.TransportError) -> ModelProviderError:
    if isinstance(exc, httpx.TimeoutException):
        return ModelProviderError(f"model server timed out ({type(exc).__name__})", None, True)
    return ModelProviderError(f"model server unreachable: {exc!r}", None, True)


def _is_json_object(raw: str) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
