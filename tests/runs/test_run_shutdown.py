"""`runplane serve` stops on SIGTERM even while a run stream is open (a rolling deploy must not hang on
SSE clients): open streams are cut after the grace period and clients resume elsewhere."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx

from tests.runs.helpers import LONG_PROMPT, make_thread, start_run, wait_for_status
from tests.runs.procs import base_env, start_serve
from tests.support import register_user

GRACE = 1  # RUNPLANE_SHUTDOWN_GRACE_SECONDS (default 10)


async def test_sigterm_ends_the_server_despite_an_open_stream(tmp_path: Path) -> None:
    env = base_env(tmp_path, run_queue="inprocess", scripted_chunk_delay=0.07, shutdown_grace_seconds=GRACE)
    proc = await start_serve("shutdown", env, tmp_path / "logs")
    try:
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=30) as client:
            user = await register_user(client)
            run_id = (await start_run(client, user, await make_thread(client, user), prompt=LONG_PROMPT))[
                "agent_run_id"
            ]
            await wait_for_status(client, user, run_id, "running")
            await client.post(f"/api/agent-run/{run_id}/pause", headers=user.headers)  # the stream stays open
            async with client.stream("GET", f"/api/agent-run/{run_id}/stream", headers=user.headers) as response:
                assert response.status_code == 200
                signalled = time.monotonic()
                proc.popen.send_signal(signal.SIGTERM)
                exited = await asyncio.to_thread(proc.popen.wait, GRACE + 10)
                assert exited is not None and time.monotonic() - signalled < GRACE + 10
    finally:
        proc.kill()
