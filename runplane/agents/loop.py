"""The agent loop: ask the model, stream its words out as events, run the tools it asks for, repeat."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runplane.agents.providers.base import (
    ChatMessage,
    ContentDelta,
    ModelProvider,
    ProviderEvent,
    ToolCall,
    ToolCallRequest,
    Usage,
    UsageReport,
)
from runplane.agents.tools import TOOL_SPECS, ToolRunner, new_message_id

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
Checkpoint = Callable[[], Awaitable[None]]  # raises to stop; waits while paused

SYSTEM_PROMPT = (
    "You are a coding agent working in the user's project workspace. Use the tools to inspect and "
    "change files and to run commands. Be concise; say what you did."
)
# Content deltas are batched into events: one event per token would cost a DB write each.
FLUSH_CHARS, FLUSH_SECONDS = 256, 0.05


@dataclass
class LoopResult:
    final_text: str = ""
    usage: Usage = field(default_factory=lambda: Usage(0, 0, 0))
    steps: int = 0


class ContentBuffer:
    def __init__(self, emit: Emit, message_id: str) -> None:
        self.emit, self.message_id = emit, message_id
        self.parts: list[str] = []
        self.size, self.first_at = 0, 0.0
        self.text = ""

    async def add(self, text: str) -> None:
        if not self.parts:
            self.first_at = time.monotonic()
        self.parts.append(text)
        self.size += len(text)
        self.text += text
        if self.size >= FLUSH_CHARS or time.monotonic() - self.first_at >= FLUSH_SECONDS:
            await self.flush()

    async def flush(self) -> None:
        if self.parts:
            chunk, self.parts, self.size = "".join(self.parts), [], 0
            await self.emit("content", {"content": chunk, "message_id": self.message_id})


class AgentLoop:
    def __init__(
        self, provider: ModelProvider, model: str, tools: ToolRunner, emit: Emit, checkpoint: Checkpoint, max_steps: int
    ) -> None:
        self.provider, self.model, self.tools = provider, model, tools
        self.emit, self.checkpoint, self.max_steps = emit, checkpoint, max_steps

    async def run(self, history: list[ChatMessage], result: LoopResult | None = None) -> LoopResult:
        """`result` is filled step by step, so a caller still has the usage so far if the run is cut short."""
        messages = [ChatMessage("system", SYSTEM_PROMPT), *history]
        result = result if result is not None else LoopResult()
        for step in range(1, self.max_steps + 1):
            await self.checkpoint()
            text, calls, usage = await self._ask_model(messages)
            result.usage = _add_usage(result.usage, usage)
            result.steps = step
            if text:
                result.final_text = text
            messages.append(ChatMessage("assistant", text or None, tool_calls=calls or None))
            if not calls:
                return result
            for call in calls:
                await self.checkpoint()
                messages.append(await self._run_tool(call))
        await self.emit("content", {"content": "\n[stopped: step limit reached]", "message_id": new_message_id()})
        return result

    async def _ask_model(self, messages: list[ChatMessage]) -> tuple[str, list[ToolCall], Usage | None]:
        buffer = ContentBuffer(self.emit, new_message_id())
        calls: list[ToolCall] = []
        usage: Usage | None = None
        event: ProviderEvent
        async for event in self.provider.stream_chat(messages, TOOL_SPECS, self.model):
            if isinstance(event, ContentDelta):
                await buffer.add(event.text)
            elif isinstance(event, ToolCallRequest):
                calls.append(event.call)
            elif isinstance(event, UsageReport):
                usage = event.usage
        await buffer.flush()
        return buffer.text, calls, usage

    async def _run_tool(self, call: ToolCall) -> ChatMessage:
        await self.emit("tool_call", {"tool": call.name, "arguments": call.arguments, "tool_call_id": call.id})
        outcome = await self.tools.run(call)
        await self.emit(
            "tool_result",
            {"tool": call.name, "result": outcome.result, "tool_call_id": call.id, "ok": outcome.ok, **outcome.extra},
        )
        return ChatMessage("tool", outcome.result, tool_call_id=call.id, name=call.name)


def _add_usage(total: Usage, more: Usage | None) -> Usage:
    if more is None:
        return total
    return Usage(
        total.prompt_tokens + more.prompt_tokens,
        total.completion_tokens + more.completion_tokens,
        total.total_tokens + more.total_tokens,
    )
