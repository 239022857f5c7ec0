"""A live group whose encoder awaits (the message dialect reads the log for a reply's whole text): every event
still reaches every member, the terminal one included. Before the fix, `_pending.append(... await encode)` bound
the list before the await, `_flush` swapped it meanwhile, and the event went into the list already flushed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from runplane.events.live import LiveGroups, Member, QueueSink
from runplane.events.types import RunEventMessage

RUN = "run-1"


def events(count: int) -> list[RunEventMessage]:
    body = [RunEventMessage(RUN, seq, "content", {"content": str(seq)}) for seq in range(1, count)]
    return [*body, RunEventMessage(RUN, count, "status", {"status": "completed"})]


class Join:
    key = "test"

    def build(self, payloads: Sequence[bytes]) -> bytes:
        return b"".join(payloads)


async def test_an_awaiting_encoder_loses_no_event() -> None:
    log = events(6)

    async def follow(after: int) -> AsyncIterator[RunEventMessage | None]:
        for event in log:
            if event.sequence > after:
                yield event

    async def replay(after: int) -> list[RunEventMessage]:
        return [event for event in log if event.sequence > after]

    async def encode(event: RunEventMessage) -> bytes:
        await asyncio.sleep(0.001 * (event.sequence % 3))  # yields to the loop: the scheduled flush runs meanwhile
        return f"{event.sequence};".encode()

    sink: QueueSink[bytes] = QueueSink(1 << 20, len)
    member = Member(0, Join(), sink)
    group = LiveGroups().join("key", member, follow, replay, encode)
    await asyncio.wait_for(group.serve(member), 5)
    group.leave(member)
    assert b"".join(await sink.take(0)) == b"1;2;3;4;5;6;"
