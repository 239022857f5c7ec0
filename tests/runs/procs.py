"""Real runplane processes for the run tests: `runplane serve` and `runplane worker` as subprocesses
(tests/spawned.py), and the services a cluster of them needs.

The session server (tests/conftest.py) runs inside the test's event loop; several tests need other settings
(short SSE heartbeats, the default rate limits, an OpenAI-compatible provider, arq + a worker, short leases).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid

from tests.spawned import START_TIMEOUT, Process, base_env, start_serve, start_worker

__all__ = [  # Process and the start functions are tests/spawned.py's, imported from here by the run tests
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "REDIS_HOST",
    "REDIS_PORT",
    "Process",
    "base_env",
    "isolated_redis_url",
    "needs_redis_server",
    "postgres_and_redis_or_skip",
    "start_serve",
    "start_worker",
    "tcp_reachable",
    "wait_worker_ready",
]
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


async def wait_worker_ready(proc: Process, timeout: float = START_TIMEOUT) -> None:
    """arq logs "Starting worker for N functions" once it polls the queue; our startup hook runs before."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        if "Starting worker" in proc.log_tail(100_000) or "redis_version" in proc.log_tail(100_000):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready after {timeout}s:\n{proc.log_tail()}")


async def tcp_reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


async def postgres_and_redis_or_skip() -> None:
    """Multi-process tests need both. Unreachable: skip, unless CI=true where that is a failure."""
    import pytest

    if os.environ.get("CI") == "true" and os.environ.get("RUNPLANE_TEST_DATABASE") != "postgres":
        pytest.skip("multi-process run tests run once, in CI's PostgreSQL + Redis pass")
    missing = [
        name
        for name, host, port in (("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT), ("Redis", REDIS_HOST, REDIS_PORT))
        if not await tcp_reachable(host, port)
    ]
    if not missing:
        return
    message = f"{' and '.join(missing)} unreachable at 127.0.0.1: multi-process run tests need both"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true requires them)")
    pytest.skip(message)


def needs_redis_server() -> None:
    """A private redis-server this test may kill: its binary is required in CI (CI=true), else the test skips."""
    import pytest

    if shutil.which("redis-server") is None:
        message = "redis-server binary not found (a private Redis is killed and restarted here)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def isolated_redis_url() -> str:
    """A Redis URL on a database index of its own: the arq queue name is fixed, and other processes on
    this machine (other test runs, other developers) must not take this cluster's jobs, nor it theirs."""
    base = os.environ.get("RUNPLANE_TEST_REDIS_URL") or f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    head = base.rsplit("/", 1)[0] if base.count("/") >= 3 else base
    # Under pytest-xdist each worker process gets its own index (gw0 -> 1, gw1 -> 2...), so clusters of two
    # workers of the suite running at the same time never share a queue; alone, any index of 1-15 will do.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isascii() and worker[2:].isdigit():
        return f"{head}/{1 + int(worker[2:]) % 15}"
    return f"{head}/{1 + uuid.uuid4().int % 15}"
