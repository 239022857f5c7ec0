"""Provider-neutral types for talking to a chat model.

The executor only ever sees these types: every backend (OpenAI-compatible HTTP, the offline
scripted agent) turns its own wire format into a stream of `ProviderEvent`s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool invocation requested by the model.

    `raw_arguments` is kept verbatim because models sometimes emit invalid JSON; the executor
    can then report the problem back to the model instead of crashing the run.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str


@dataclass(slots=True)
class ChatMessage:
    role: Role | str
    content: str | None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    name: str
    provider: str
    context_length: int | None = None
    # Kept as the provider sends it (OpenRouter: USD per token as decimal strings).
    pricing: dict[str, Any] | None = None


# ---- streamed events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """Emitted once per tool call, only after all its argument fragments have arrived."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True, slots=True)
class Finished:
    # "stop", "tool_calls", "length", "content_filter", ... as the model reported it.
    reason: str


ProviderEvent: TypeAlias = ContentDelta | ToolCallRequest | UsageReport | Finished


class ModelProviderError(Exception):
    """A model call failed. `retryable` tells the caller whether trying again can help."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        retryable: bool = False,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"ModelProviderError({self.message!r}, status={self.status!r}, "
            f"retryable={self.retryable!r}, retry_after={self.retry_after!r})"
        )


@runtime_checkable
class ModelProvider(Protocol):
    """What the executor needs from a model backend.

    `stream_chat` is declared without `async` on purpose: implementations are `async def`
    generators, and an async generator function's type is "callable returning AsyncIterator",
    not "coroutine returning AsyncIterator". Callers write `async for ev in p.stream_chat(...)`.
    """

    def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        model: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncIterator[ProviderEvent]: ...

    async def list_models(self) -> list[ModelInfo]: ...

    async def aclose(self) -> None: ...


async def collect(stream: AsyncIterator[ProviderEvent]) -> CollectedReply:
    """Drain a stream into one reply; handy for non-streaming callers and tests."""
    reply = CollectedReply()
    async for event in stream:
        reply.add(event)
    return reply


@dataclass(slots=True)
class CollectedReply:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    events: list[ProviderEvent] = field(default_factory=list)

    def add(self, event: ProviderEvent) -> None:
        self.events.append(event)
        if isinstance(event, ContentDelta):
            self.content += event.text
        elif isinstance(event, ToolCallRequest):
            self.tool_calls.append(event.call)
        elif isinstance(event, UsageReport):
            self.usage = event.usage
        else:
            self.finish_reason = event.reason

    def as_message(self) -> ChatMessage:
        """The assistant message to append to the conversation for the next turn."""
        return ChatMessage("assistant", self.content or None, tool_calls=self.tool_calls or None)
