"""A real local HTTP server speaking the OpenAI chat-completions streaming protocol.

Not a mock: it listens on 127.0.0.1 (free port), runs uvicorn in a background thread, and the
provider under test talks to it over TCP exactly as it would to OpenRouter. Tests queue
"turns" (what the model says next), inject failures, and inspect the recorded requests.

    async with FakeOpenAIServer(api_key="sk-test") as server:
        server.add_turn(Turn(content=["Hel", "lo"]))
        provider = OpenAICompatibleProvider(server.base_url, "sk-test")
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
DEFAULT_MODELS: list[dict[str, Any]] = [
    {
        "id": "openai/gpt-4o-mini",
        "name": "OpenAI: GPT-4o-mini",
        "context_length": 128000,
        "pricing": {"prompt": "0.00000015", "completion": "0.0000006"},
    },
    {
        "id": "anthropic/claude-sonnet-4",
        "name": "Anthropic: Claude Sonnet 4",
        "context_length": 200000,
        "pricing": {"prompt": "0.000003", "completion": "0.000015"},
    },
]
DEFAULT_KEY_INFO: dict[str, Any] = {
    "label": "sk-or-v1-abc...xyz",
    "usage": 1.25,
    "limit": 10.0,
    "limit_remaining": 8.75,
    "is_free_tier": False,
    "rate_limit": {"requests": 10, "interval": "10s"},
}


@dataclass
class ScriptedToolCall:
    name: str
    arguments: str | dict[str, Any]  # a str is sent verbatim, so it may be malformed JSON
    id: str | None = None
    fragments: int = 3  # how many chunks the arguments string is split across

    def raw(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class Turn:
    """One streamed reply of the fake model."""

    content: list[str] = field(default_factory=list)
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    usage: dict[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_USAGE))
    finish_reason: str | None = None  # default: "tool_calls" when there are tool calls
    interleave: bool = False  # send all tool-call headers, then fragments round-robin
    chunk_delay: float = 0.0
    first_byte_delay: float = 0.0  # sleep before the response starts (timeout tests)
    error_after_content: dict[str, Any] | None = None  # OpenRouter-style in-stream error
    truncate_after_content: bool = False  # close the stream without finish_reason/[DONE]
    multiline_data: bool = False  # each event's JSON over several `data:` lines (SSE joins them with newlines)


@dataclass
class Failure:
    status: int
    retry_after: str | None = None
    message: str = "injected failure"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.body.get("tools", [])) if isinstance(self.body, dict) else []


class FakeOpenAIServer:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: list[dict[str, Any]] | None = None,
        key_info: dict[str, Any] | None = None,
    ) -> None:
        self.api_key = api_key  # when set, other bearer tokens get 401
        self.models = models if models is not None else list(DEFAULT_MODELS)
        self.key_info = key_info if key_info is not None else dict(DEFAULT_KEY_INFO)
        # deques: appended by the test thread, consumed by the server thread (atomic ops)
        self.turns: deque[Turn] = deque()
        self.failures: deque[Failure] = deque()
        self.requests: list[RecordedRequest] = []
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/key", self._key, methods=["GET"]),
            ]
        )

    # ---- test-facing API ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def add_turn(self, *turns: Turn) -> None:
        self.turns.extend(turns)

    def fail_next(self, status: int, times: int = 1, *, retry_after: str | None = None, message: str = "") -> None:
        """The next `times` requests (any route) answer `status` instead of their normal reply."""
        for _ in range(times):
            self.failures.append(Failure(status, retry_after, message or f"injected {status}"))

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    async def start(self) -> FakeOpenAIServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # port 0: the OS picks a free port, no races between tests
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        await self._wait_started(sock)
        return self

    async def _wait_started(self, sock: socket.socket, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self._server is not None and not self._server.started:
            if time.monotonic() > deadline or not (self._thread and self._thread.is_alive()):
                sock.close()
                raise RuntimeError("fake OpenAI server did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        await asyncio.to_thread(self._thread.join, 10)
        self._server = self._thread = None

    async def __aenter__(self) -> FakeOpenAIServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- routes ------------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        body = await self._record(request)
        if (refusal := self._refusal(request)) is not None:
            return refusal
        if not self.turns:
            return _error(400, "fake server: no scripted turn queued")
        turn = self.turns.popleft()
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        frames = _stream(turn, str(body.get("model", "")), include_usage)
        return StreamingResponse(frames, media_type="text/event-stream")

    async def _models(self, request: Request) -> Response:
        await self._record(request)
        refusal = self._refusal(request)
        return refusal if refusal is not None else JSONResponse({"data": self.models})

    async def _key(self, request: Request) -> Response:
        await self._record(request)
        refusal = self._refusal(request)
        return refusal if refusal is not None else JSONResponse({"data": self.key_info})

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(RecordedRequest(request.method, request.url.path, headers, body))
        return body if isinstance(body, dict) else {}

    def _refusal(self, request: Request) -> Response | None:
        """An injected failure, or 401 for a wrong key, or None to serve normally."""
        if self.failures:
            failure = self.failures.popleft()
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            return _error(failure.status, failure.message, headers)
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "No auth credentials found")
        return None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    # OpenRouter and OpenAI both wrap errors as {"error": {"message", "code"}}.
    return JSONResponse({"error": {"message": message, "code": status}}, status, headers)


# ---- the stream --------------------------------------------------------------------------------


async def _stream(turn: Turn, model: str, include_usage: bool) -> AsyncIterator[str]:
    if turn.first_byte_delay:
        await asyncio.sleep(turn.first_byte_delay)
    yield ": OPENROUTER PROCESSING\n\n"  # SSE comment, as OpenRouter sends: clients skip it
    for frame in _frames(turn, model, include_usage):
        if turn.multiline_data and frame.startswith("data: {"):
            frame = "".join(f"data: {line}\n" for line in json.dumps(json.loads(frame[6:]), indent=1).splitlines())
            frame += "\n"
        if turn.chunk_delay:
            await asyncio.sleep(turn.chunk_delay)
        yield frame


def _frames(turn: Turn, model: str, include_usage: bool) -> list[str]:
    chunk = _ChunkFactory(model)
    frames = [chunk.delta({"role": "assistant", "content": ""})]
    frames += [chunk.delta({"content": text}) for text in turn.content]
    if turn.error_after_content is not None:
        return [*frames, _data({"error": turn.error_after_content})]
    if turn.truncate_after_content:
        return frames
    frames += [chunk.delta({"tool_calls": [d]}) for d in _tool_call_deltas(turn)]
    reason = turn.finish_reason or ("tool_calls" if turn.tool_calls else "stop")
    frames.append(chunk.delta({}, finish_reason=reason))
    if include_usage and turn.usage is not None:
        # Per the OpenAI docs: a last chunk with empty choices carrying the whole usage.
        frames.append(_data({**chunk.envelope(), "choices": [], "usage": turn.usage}))
    return [*frames, "data: [DONE]\n\n"]


def _tool_call_deltas(turn: Turn) -> list[dict[str, Any]]:
    """Header delta (id, name) then argument fragments per call, optionally interleaved."""
    headers: list[dict[str, Any]] = []
    fragment_lists: list[list[dict[str, Any]]] = []
    for index, call in enumerate(turn.tool_calls):
        call_id = call.id or f"call_fake_{index}"
        function = {"name": call.name, "arguments": ""}
        headers.append({"index": index, "id": call_id, "type": "function", "function": function})
        fragment_lists.append(
            [{"index": index, "function": {"arguments": piece}} for piece in _split(call.raw(), call.fragments)]
        )
    if turn.interleave:
        return headers + _round_robin(fragment_lists)
    pairs = zip(headers, fragment_lists, strict=True)
    return [delta for header, frags in pairs for delta in [header, *frags]]


def _split(text: str, parts: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, parts)))  # ceiling division
    return [text[i : i + size] for i in range(0, len(text), size)]


def _round_robin(lists: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for position in range(max((len(x) for x in lists), default=0)):
        out += [x[position] for x in lists if position < len(x)]
    return out


class _ChunkFactory:
    def __init__(self, model: str) -> None:
        self.model = model
        self.id = f"chatcmpl-fake-{time.monotonic_ns()}"
        self.created = int(time.time())

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return _data({**self.envelope(), "choices": [choice]})


def _data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"
