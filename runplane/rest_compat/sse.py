"""Server-Sent Events for run streams: `id:` = sequence (Last-Event-ID resumes), `: ping` heartbeats.

Every SSE client of a run is a member of the process's live group for (run, shape) (events/live.py):
one reader per run frames each event once, and each response gets all frames that are ready as ONE
body chunk (one write), not one chunk per event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Hashable, Sequence
from typing import Any, Protocol

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from runplane.events.encoder import SharedEncoder
from runplane.events.live import LiveGroups, Member, QueueSink
from runplane.events.types import RunEventMessage
from runplane.resolvers import agent_runs as ops
from runplane.resolvers.context import RequestContext

HEARTBEAT_SECONDS = 15.0
PING = b": ping\n\n"
RETRY = b"retry: 2000\n\n"
# Every SSE client of a run gets the same bytes for an event: frame it once per process.
_frames = SharedEncoder(max_entries=8192)
_groups = LiveGroups()
# Frames queued for one response beyond this (its client reads slower than the run writes): the
# response leaves the live group and catches up from the log once its queue drained.
BOUND_BYTES = 256 * 1024


def sse_frame(event: RunEventMessage, shape: Callable[[RunEventMessage], dict[str, Any]]) -> bytes:
    data = json.dumps(shape(event), separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.sequence}\nevent: message\ndata: {data}\n\n".encode()


class FrameEncoder(Protocol):
    """Turns one run event into the bytes of its SSE frames (none, one or several; the last carries `id:`).
    `key` names the encoding: frames are shared between the responses whose encoder has the same key."""

    @property
    def key(self) -> Hashable: ...

    async def __call__(self, event: RunEventMessage) -> bytes: ...


class ShapeEncoder:
    """runplane's documented frames: `id: <seq>`, `event: message`, `data: <shape(event)>`."""

    def __init__(self, shape: Callable[[RunEventMessage], dict[str, Any]]) -> None:
        self.shape = shape
        self.key = ("sse", shape.__module__, shape.__qualname__)

    def frame(self, event: RunEventMessage) -> bytes:
        return sse_frame(event, self.shape)

    async def __call__(self, event: RunEventMessage) -> bytes:
        return self.frame(event)


async def event_stream_response(
    ctx: RequestContext,
    stream: ops.RunStream,
    encoder: FrameEncoder,
    *,
    heartbeat: float = HEARTBEAT_SECONDS,
) -> StreamingResponse:
    frame_key = encoder.key  # frames differ by encoding: never share across encodings

    async def encode(event: RunEventMessage) -> bytes:
        if isinstance(encoder, ShapeEncoder):  # the fan-out hot path: no coroutine per event
            return _frames.encode_once(frame_key, event, encoder.frame)
        return await _frames.encode_once_async(frame_key, event, encoder)

    async def body() -> AsyncIterator[bytes]:
        sink: QueueSink[bytes] = QueueSink(BOUND_BYTES, len)
        member = Member(stream.after, _JOIN, sink)
        group = ops.join_live_group(ctx, _groups, stream, frame_key, member, encode, heartbeat=heartbeat)
        server = asyncio.create_task(group.serve(member))
        server.add_done_callback(lambda _: sink.finish())
        try:
            yield RETRY
            while chunks := await sink.take(heartbeat) or ([] if sink.finished else [PING]):
                yield b"".join(chunks)
            await server  # its error, if any, ends the response like the reader's did
        finally:
            # A client that went away arrives here as anyio's cancellation, which cancels every await in this
            # block again: the cleanup is synchronous, and release() shields its own Redis call.
            sink.close()
            server.cancel()
            group.leave(member)
            await stream.release()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
    return EventStreamResponse(body(), media_type="text/event-stream", headers=headers)


class EventStreamResponse(StreamingResponse):
    """Closes its body generator as soon as the response ends, whatever ended it. Under an ASGI 2.4 server a
    client that went away surfaces as an OSError from `send`, which leaves the generator suspended: its
    `finally` (leave the live group, free the user's stream slot) would wait for the garbage collector."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            body = self.body_iterator
            if isinstance(body, AsyncGenerator):
                await body.aclose()


class _Join:
    """SSE frames are the same bytes for every client of the shape: a batch is their concatenation."""

    key = "sse"

    def build(self, payloads: Sequence[bytes]) -> bytes:
        return b"".join(payloads)


_JOIN = _Join()
