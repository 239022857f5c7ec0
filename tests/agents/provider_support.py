"""Helpers shared by the provider tests (importable, unlike conftest)."""

from __future__ import annotations

API_KEY = "sk-test-key"


class SleepRecorder:
    """Stands in for asyncio.sleep in retries: records the backoff instead of waiting it out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
