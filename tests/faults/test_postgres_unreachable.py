"""PostgreSQL out of reach, for real: a `runplane serve` process talks to PostgreSQL through a TCP proxy
(tests/fakes/tcp_proxy.py) that is cut, then restored, while the process keeps running.

Two outages: refused (nothing listens: connects fail at once, open connections are cut) and blackholed
(connections are accepted and nothing ever answers: only timeouts end the wait). In both, the health probe,
a REST route and GraphQL must answer "unavailable" (503 + Retry-After / SERVICE_UNAVAILABLE) within the
configured timeouts, never hang and never 500, and must not leak where the database lives; once the proxy is
restored the same process serves again. Start-up with the database down waits, then gives up clearly.

Only in the PostgreSQL pass (RUNPLANE_TEST_DATABASE=postgres); the SQLite side is in test_database_errors.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import support
from tests.fakes.tcp_proxy import TCPProxy
from tests.runs.procs import POSTGRES_HOST, POSTGRES_PORT
from tests.spawned import Process, base_env, runplane_command, spawn, spawn_server, start_serve
from tests.support import UserHandle, create_postgres_database, drop_postgres_database, free_port, register_user

pytestmark = pytest.mark.skipif(
    support.test_database_kind() != "postgres", reason="PostgreSQL faults: RUNPLANE_TEST_DATABASE=postgres"
)

CONNECT_TIMEOUT, COMMAND_TIMEOUT = 1.0, 1.5  # seconds, RUNPLANE_DATABASE_CONNECT_TIMEOUT / _COMMAND_TIMEOUT
BOUND = 3.0  # every answer during an outage comes within this
RECOVERY_BOUND = 5.0
PROJECTS = "{ projects { nodes { id name } } }"
LOGIN = 'mutation { login(input: {email: "nobody@example.com", password: "x"}) { __typename } }'


@dataclass
class Outage:
    server: Process
    proxy: TCPProxy
    http: httpx.AsyncClient
    user: UserHandle
    project_id: str


@pytest.fixture(scope="module")
async def outage(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Outage]:
    database = await create_postgres_database()
    try:
        async with TCPProxy(POSTGRES_HOST, POSTGRES_PORT) as proxy:
            settings = dict(
                database_url=f"postgres://postgres@127.0.0.1:{proxy.port}/{database}",
                database_connect_timeout=CONNECT_TIMEOUT,
                database_command_timeout=COMMAND_TIMEOUT,
                rate_limit_per_minute=0,
                # Background passes would log their own (expected) failures during an outage: keep them out of it.
                reaper_interval_seconds=3600,
                sandbox_reaper_interval=3600,
            )
            tmp = tmp_path_factory.mktemp("pg-outage")
            async with (
                spawn_server(tmp, settings) as server,
                httpx.AsyncClient(base_url=server.base_url, timeout=30) as http,
            ):
                user = await register_user(http)
                created = await http.post("/api/projects", json={"name": "outage"}, headers=user.headers)
                assert created.status_code == 201, created.text
                yield Outage(server, proxy, http, user, created.json()["project_id"])
    finally:
        await drop_postgres_database(database)


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


def assert_no_address(response: httpx.Response, proxy: TCPProxy) -> None:
    for leak in ("127.0.0.1", str(proxy.port), str(POSTGRES_PORT), "Connect call failed"):
        assert leak not in response.text, response.text


async def graphql(o: Outage, query: str, *, auth: bool = True) -> httpx.Response:
    return await o.http.post("/graphql", json={"query": query}, headers=o.user.headers if auth else {})


async def check_outage_answers(o: Outage) -> dict[str, float]:
    """Every kind of answer during the outage, each within BOUND; returns the seconds each took."""
    took: dict[str, float] = {}
    # GraphQL first, while the session check of the token is still cached: the field itself meets the outage.
    response, took["graphql_query"] = await timed(graphql(o, PROJECTS))
    assert response.status_code == 200, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE", error
    assert error["extensions"]["retry_after"] >= 1 and "database" in error["message"].lower()
    assert_no_address(response, o.proxy)

    response, took["graphql_mutation"] = await timed(graphql(o, LOGIN, auth=False))
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE", error

    response, took["deep_health"] = await timed(o.http.get("/api/health/deep"))
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["components"]["database"]["status"] == "down"
    assert body["components"]["database"]["error"] in {"unreachable", "timed out"}
    assert_no_address(response, o.proxy)
    assert (await o.http.get("/api/health/ready")).status_code == 503
    assert (await o.http.get("/api/health/live")).status_code == 200

    for name, path in (("rest_list", "/api/projects"), ("rest_get", f"/api/projects/{o.project_id}")):
        response, took[name] = await timed(o.http.get(path, headers=o.user.headers))
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["code"] == "SERVICE_UNAVAILABLE" and response.json()["detail"]
        assert_no_address(response, o.proxy)

    # Writes too, several at once: more than the pool holds (5), so some wait for a pooled connection.
    writes = [o.http.post("/api/projects", json={"name": f"p{i}"}, headers=o.user.headers) for i in range(8)]
    started = time.monotonic()
    responses = await asyncio.gather(*writes)
    took["rest_8_concurrent_writes"] = time.monotonic() - started
    assert [r.status_code for r in responses] == [503] * 8, [r.text for r in responses]

    slow = {name: seconds for name, seconds in took.items() if seconds >= BOUND}
    assert not slow, slow
    assert o.server.alive
    return took


async def check_recovery(o: Outage) -> float:
    """Seconds from the proxy's restore to a healthy deep probe; then everything works in the same process."""
    pid = o.server.popen.pid
    await o.proxy.restore()
    restored = time.monotonic()
    while (await o.http.get("/api/health/deep")).status_code != 200:
        assert time.monotonic() - restored < RECOVERY_BOUND, "not recovered"
        await asyncio.sleep(0.05)
    recovery = time.monotonic() - restored
    listed = await o.http.get("/api/projects", headers=o.user.headers)
    assert listed.status_code == 200, listed.text
    created = await o.http.post("/api/projects", json={"name": "after"}, headers=o.user.headers)
    assert created.status_code == 201, created.text
    response = await graphql(o, PROJECTS)
    assert "errors" not in response.json(), response.text
    assert {p["name"] for p in response.json()["data"]["projects"]["nodes"]} >= {"outage", "after"}
    assert o.server.alive and o.server.popen.pid == pid
    assert "Traceback" not in o.server.log_tail(200_000)  # outages are logged as one-line warnings, not 500s
    return recovery


async def run_outage(o: Outage, cut: Callable[[], Awaitable[None]], name: str) -> None:
    warm = await graphql(o, PROJECTS)  # a live pooled connection and a cached session: the outage hits both
    assert "errors" not in warm.json(), warm.text
    await cut()
    try:
        took = await check_outage_answers(o)
    finally:
        recovery = await check_recovery(o)
    print(
        json.dumps(
            {f"postgres_{name}_seconds": {**{k: round(v, 3) for k, v in took.items()}, "recovery": round(recovery, 3)}}
        )
    )


async def test_refused_database_is_503_at_once_and_the_service_recovers(outage: Outage) -> None:
    await run_outage(outage, outage.proxy.refuse, "refused")


async def test_blackholed_database_is_503_within_the_timeouts_and_the_service_recovers(outage: Outage) -> None:
    async def blackhole() -> None:
        outage.proxy.blackhole()

    await run_outage(outage, blackhole, "blackholed")


# --- start-up with the database down -----------------------------------------------------------------------


async def test_startup_gives_up_clearly_when_the_database_stays_down(tmp_path: Path) -> None:
    env = base_env(
        tmp_path,
        database_url=f"postgres://postgres@127.0.0.1:{free_port()}/nothing_listens",
        database_connect_timeout=CONNECT_TIMEOUT,
        database_startup_timeout=2,
        untrusted_port=free_port(),  # not --port + 1, which a parallel test may hold
    )
    started = time.monotonic()
    proc = spawn("server", runplane_command("serve", "--port", str(free_port())), env, tmp_path / "logs")
    code = await asyncio.to_thread(proc.popen.wait, 60)
    assert code == 3  # uvicorn's "startup failed"
    assert time.monotonic() - started < 45  # 2 s of retries; the rest is imports on a busy machine
    log = proc.log_tail(20_000)
    assert "database unreachable, retrying" in log, log
    assert "giving up (RUNPLANE_DATABASE_STARTUP_TIMEOUT)" in log, log


async def test_startup_waits_for_the_database_and_serves_once_it_is_up(tmp_path: Path) -> None:
    database = await create_postgres_database()
    try:
        async with TCPProxy(POSTGRES_HOST, POSTGRES_PORT) as proxy:
            await proxy.refuse()
            env = base_env(
                tmp_path,
                database_url=f"postgres://postgres@127.0.0.1:{proxy.port}/{database}",
                database_connect_timeout=CONNECT_TIMEOUT,
                database_startup_timeout=60,
            )
            logs = tmp_path / "logs"
            starting = asyncio.create_task(start_serve("server", env, logs))
            await wait_for_log(
                logs, "database unreachable, retrying"
            )  # it is waiting (imports are slow on a busy machine)
            assert not starting.done()
            await proxy.restore()
            server = await asyncio.wait_for(starting, 60)
            try:
                async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
                    assert (await http.get("/api/health/deep")).status_code == 200
                    await register_user(http)
            finally:
                await server.stop()
    finally:
        await drop_postgres_database(database)


async def wait_for_log(logs: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in log.read_text(errors="replace") for log in logs.glob("*.log")):
        assert time.monotonic() < deadline, f"no {text!r} in the logs after {timeout}s"
        await asyncio.sleep(0.1)
