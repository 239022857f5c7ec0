"""The sandbox API tests talk to a `runplane serve` process of their own (tests/sandbox_api/serve.py):
`client`, and through it `alice` and `bob`, are overridden to use it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.sandbox_api.serve import SandboxServer, reachable_dir, sandbox_server

__all__ = ["reachable_dir"]  # other suites import it from here too


@pytest.fixture(scope="session")
async def sbx(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SandboxServer]:
    async with sandbox_server(tmp_path_factory.mktemp("runplane-sbxapi")) as server:
        yield server


@pytest.fixture
async def client(sbx: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sbx.base_url, timeout=30) as http:
        yield http
