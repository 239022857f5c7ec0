"""Two `runplane serve` processes sharing PostgreSQL and Redis (runs execute in A). A user's stream slots are
leases in Redis: when A is SIGKILLed holding four of them, the user gets streams on B again within the lease
time, without anyone giving them back. A logout on B closes the user's socket and ends their stream on A within
the session recheck period (the database is the truth).

Only in the PostgreSQL + Redis pass (skipped when either is unreachable, unless CI=true)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest

from tests.runs.clients import node_subscribe
from tests.runs.helpers import sse_messages
from tests.runs.procs import base_env, isolated_redis_url, postgres_and_redis_or_skip, start_serve
from tests.spawned import Process
from tests.streams.helpers import STREAMS, assert_all_free, assert_refused, hold, paused_run, run_stream_url
from tests.support import create_postgres_database, drop_postgres_database, register_user

LEASE, RECHECK = 4, 1  # seconds: RUNPLANE_STREAM_LEASE_SECONDS, RUNPLANE_SESSION_RECHECK_SECONDS


@dataclass
class Pair:
    a: Process
    b: Process


@pytest.fixture(scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    await postgres_and_redis_or_skip()
    tmp = tmp_path_factory.mktemp("pair")
    database = await create_postgres_database()
    env = base_env(
        tmp,
        database_url=f"postgres://postgres@127.0.0.1:5432/{database}",
        redis_url=isolated_redis_url(),
        run_queue="inprocess",
        scripted_chunk_delay=0.05,
        stream_lease_seconds=LEASE,
        session_recheck_seconds=RECHECK,
        # The slots are under test, not the 60 requests a minute: polling for free slots (four streams every 0.2 s)
        # would use up that limit in three seconds and read as slots still held.
        rate_limit_per_minute=100_000,
    )
    procs: list[Process] = []
    try:
        a, b = await asyncio.gather(
            start_serve("lease-a", env, tmp / "logs"), start_serve("lease-b", env, tmp / "logs")
        )
        procs += [a, b]
        yield Pair(a, b)
    finally:
        for proc in procs:
            await proc.stop()
        await drop_postgres_database(database)


async def test_a_logout_on_one_process_ends_the_users_socket_and_stream_on_the_other(pair: Pair) -> None:
    async with (
        httpx.AsyncClient(base_url=pair.a.base_url, timeout=30) as on_a,
        httpx.AsyncClient(base_url=pair.b.base_url, timeout=30) as on_b,
    ):
        user = await register_user(on_a)
        run_id = await paused_run(on_a, user)
        logged_out: list[float] = []

        async def log_out_on_b(_: object) -> None:
            if not logged_out:
                assert (await on_b.post("/api/auth/logout", headers=user.headers)).status_code in (200, 204)
                logged_out.append(time.monotonic())

        async def sse_on_a() -> str:
            async with on_a.stream("GET", run_stream_url(run_id), headers=user.headers) as response:
                events = [message.event async for message in sse_messages(response)]
            return events[-1]

        sse = asyncio.create_task(sse_on_a())
        lines, code = await node_subscribe(pair.a.ws_url, user.access_token, run_id, on_event=log_out_on_b)
        ended = time.monotonic()
        assert code == 2 and lines[-1]["code"] == 4403, lines
        assert ended - logged_out[0] <= RECHECK + 5
        assert await asyncio.wait_for(sse, RECHECK + 5) == "unauthenticated"


async def test_a_killed_process_gives_its_users_stream_slots_back_within_the_lease(pair: Pair) -> None:
    """Last in the module: it kills A."""
    async with (
        httpx.AsyncClient(base_url=pair.a.base_url, timeout=30) as on_a,
        httpx.AsyncClient(base_url=pair.b.base_url, timeout=30) as on_b,
    ):
        user = await register_user(on_a)
        run_id = await paused_run(on_a, user)
        async with AsyncExitStack() as stack:
            for _ in range(STREAMS):
                await hold(stack, on_a, run_stream_url(run_id), user.headers)
            await assert_refused(on_b, user, run_id)  # the slots are shared: B sees A's four
            pair.a.kill()
            killed = time.monotonic()
            await assert_refused(on_b, user, run_id)  # still held: nobody gave them back
            took = await assert_all_free(on_b, user, run_id, within=LEASE * 3)
        waited = time.monotonic() - killed
        print(f"stream slots of the killed process free again after {waited:.1f}s (lease {LEASE}s)")
        assert waited <= LEASE + 5, waited  # the lease, plus slack for a loaded machine
        assert took >= 0
