"""A second runplane server that also trusts an external issuer (a fake Clerk with a real JWKS endpoint).

It runs as its own process (`runplane serve`): Tortoise keeps one process-wide fallback context,
so two runplane apps cannot share the test process (the second start-up fails with
"Global context fallback is already enabled"). A subprocess is also what production runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.fakes.jwks_server import FakeJWKSServer
from tests.spawned import Process, spawn_server

EXTERNAL_ISSUER = "https://clerk.runplane.test"
EXTERNAL_AUDIENCE = "runplane-web"


@dataclass
class ExternalServer:
    process: Process
    idp: FakeJWKSServer


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeJWKSServer]:
    with FakeJWKSServer(issuer=EXTERNAL_ISSUER, audience=EXTERNAL_AUDIENCE) as server:
        yield server


@pytest.fixture(scope="module")
async def external(idp: FakeJWKSServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ExternalServer]:
    settings = {
        "EXTERNAL_JWKS_URL": idp.jwks_url,
        "EXTERNAL_ISSUER": EXTERNAL_ISSUER,
        "EXTERNAL_AUDIENCE": EXTERNAL_AUDIENCE,
    }
    async with spawn_server(tmp_path_factory.mktemp("runplane-external"), settings, name="external-issuer") as process:
        yield ExternalServer(process, idp)
    # Every rejection above must have been a handled 4xx: an unhandled error leaves a traceback here.
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture
async def ext_client(external: ExternalServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=external.process.base_url, timeout=30) as http:
        yield http
