"""SharedEncoder: one encoding per (document, event), shared by every subscriber."""

from __future__ import annotations

import asyncio

import pytest

from runplane.events import RunEventMessage, SharedEncoder, document_key


def test_encode_once_per_document_and_event() -> None:
    encoder = SharedEncoder()
    calls: list[int] = []

    def encode(event: RunEventMessage) -> bytes:
        calls.append(event.sequence)
        return b"data: " + event.json_bytes + b"\n\n"

    event = RunEventMessage("r", 1, "content", {})
    frames = {encoder.encode_once("doc", event, encode) for _ in range(1000)}
    assert len(frames) == 1 and calls == [1]
    encoder.encode_once("other-doc", event, encode)
    assert calls == [1, 1] and encoder.misses == 2 and encoder.hits == 999


def test_lru_is_bounded() -> None:
    encoder = SharedEncoder(max_entries=3)
    for seq in range(1, 11):
        encoder.encode_once("k", RunEventMessage("r", seq, "t", {}), lambda e: e.json_bytes)
    assert len(encoder) == 3


def test_document_key_ignores_the_cursor() -> None:
    q = "subscription { runEvents(runId: $id, after: $after) { seq } }"
    assert document_key(q, {"id": "r", "after": 5}) == document_key(q, {"after": 9, "id": "r"})
    assert document_key(q, {"id": "r"}) != document_key(q, {"id": "s"})


async def test_async_encoder_coalesces_concurrent_callers() -> None:
    encoder = SharedEncoder()
    calls = 0

    async def encode(event: RunEventMessage) -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return event.json_bytes

    event = RunEventMessage("r", 1, "t", {})
    frames = await asyncio.gather(*(encoder.encode_once_async("k", event, encode) for _ in range(200)))
    assert calls == 1 and len(set(frames)) == 1


async def test_async_encoder_failure_reaches_waiters_and_is_not_cached() -> None:
    encoder = SharedEncoder()

    async def boom(event: RunEventMessage) -> bytes:
        await asyncio.sleep(0.01)
        raise ValueError("bad")

    event = RunEventMessage("r", 1, "t", {})
    results = await asyncio.gather(
        *(encoder.encode_once_async("k", event, boom) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    assert len(encoder) == 0
    with pytest.raises(ValueError):
        await encoder.encode_once_async("k", event, boom)
