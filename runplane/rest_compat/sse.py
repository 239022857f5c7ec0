"""Server-Sent Events for run streams: `id:` = sequence (Last-Event-ID resumes), `: ping` heartbeats."""

from __future__ import annotations

import json
from contextlib import aclosing
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse

from runplane.events.encoder import SharedEncoder
from runplane.events.types import RunEvent
from runplane.resolvers import agent_runs as ops
from runplane.resolvers.context import RequestContext

HEARTBEAT_SECONDS = 15.0
PING = b": ping\n\n"
RETRY = b"retry: 2000\n\n"
# Every SSE client of a run gets the same bytes for an event: frame it once per process.
_frames = SharedEncoder(max_entries=8192)


def sse_frame(event: RunEvent, shape: Callable[[RunEvent], dict[str, Any]]) -> bytes:
    data = json.dumps(shape(event), separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.seq}\nevent: message\ndata: {data}\n\n".encode()


async def event_stream_response(
    ctx: RequestContext, stream: ops.RunStream, shape: Callable[[RunEvent], dict[str, Any]], *, heartbeat: float = HEARTBEAT_SECONDS
) -> StreamingResponse:
    frame_key = ("sse", shape.__module__, shape.__qualname__)  # frames differ by shape: never share across shapes

    async def body() -> AsyncIterator[bytes]:
        try:
            yield RETRY
            async with aclosing(ops.follow(ctx, stream, heartbeat=heartbeat)) as events:
                async for event in events:
                    yield PING if event is None else _frames.encode_once(frame_key, event, lambda e: sse_frame(e, shape))
        finally:
            await stream.release()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
