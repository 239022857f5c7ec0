"""Real runplane processes for the run tests: `runplane serve` and `runplane worker` as subprocesses.

The session server (tests/conftest.py) runs inside the test's event loop; a second one cannot (Tortoise
keeps one global database context per process), and several tests need other settings (short SSE
heartbeats, the default rate limits, an OpenAI-compatible provider, arq + a worker, short leases).
Those run here as separate processes, started with RUNPLANE_* variables exactly as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import ROOMY_PLAN, free_port

JWT_SECRET = "runs-test-secret-" + "y" * 40
START_TIMEOUT = 60.0  # a loaded CI machine imports the app slowly
STOP_TIMEOUT = 10.0
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def runplane_command(*args: str) -> list[str]:
    """The installed `runplane` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("runplane")
    if script.exists():
        return [str(script), *args]
    found = shutil.which("runplane")
    return [found, *args] if found else [sys.executable, "-m", "runplane.cli", *args]


def base_env(data_dir: Path, **settings: object) -> dict[str, str]:
    """The environment of a runplane process: this one's, minus any RUNPLANE_* of the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
    env.update(
        RUNPLANE_DATA_DIR=str(data_dir), RUNPLANE_JWT_SECRET=JWT_SECRET, RUNPLANE_LOG_LEVEL="WARNING",
        RUNPLANE_BILLING_DEFAULT_PLAN=ROOMY_PLAN,
        PYTHONUNBUFFERED="1",
    )
    for name, value in settings.items():
        if value is not None:
            env[f"RUNPLANE_{name.upper()}"] = str(value)
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None
    started_at: float = field(default_factory=time.monotonic)

    @property
    def base_url(self) -> str:
        assert self.port is not None
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        assert self.port is not None
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crashed machine)."""
        if self.alive:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(STOP_TIMEOUT)

    async def stop(self) -> None:
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.popen.wait, STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                await asyncio.to_thread(self.popen.wait, STOP_TIMEOUT)


def _die_with_parent() -> None:
    """In the child: SIGTERM when pytest dies, even by SIGKILL (which skips fixture teardown)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path, port: int | None = None) -> Process:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
    with open(log_path, "wb") as log:
        # Own session: signals meant for pytest (Ctrl-C, CI's timeout) do not reach it, we stop it.
        popen = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    return Process(name, popen, log_path, port)


async def start_serve(name: str, env: dict[str, str], log_dir: Path) -> Process:
    port = free_port()
    proc = _spawn(name, runplane_command("serve", "--host", "127.0.0.1", "--port", str(port)), env, log_dir, port)
    await wait_ready(proc)
    return proc


async def wait_ready(proc: Process, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if not proc.alive:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
            try:
                if (await http.get(f"{proc.base_url}/api/health/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    await proc.stop()
    raise RuntimeError(f"{proc.name} not ready after {timeout}s:\n{proc.log_tail()}")


def start_worker(name: str, env: dict[str, str], log_dir: Path) -> Process:
    return _spawn(name, runplane_command("worker"), env, log_dir)


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
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


async def postgres_and_redis_or_skip() -> None:
    """Multi-process tests need both. Unreachable: skip, unless CI=true where that is a failure."""
    import pytest

    if os.environ.get("CI") == "true" and os.environ.get("RUNPLANE_TEST_DATABASE") != "postgres":
        pytest.skip("multi-process run tests run once, in CI's PostgreSQL + Redis pass")
    missing = [name for name, host, port in (("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT), ("Redis", REDIS_HOST, REDIS_PORT))
               if not await tcp_reachable(host, port)]
    if not missing:
        return
    message = f"{' and '.join(missing)} unreachable at 127.0.0.1: multi-process run tests need both"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true requires them)")
    pytest.skip(message)


def isolated_redis_url() -> str:
    """A Redis URL on a database index of its own: the arq queue name is fixed, and other processes on
    this machine (other test runs, other developers) must not take this cluster's jobs, nor it theirs."""
    base = os.environ.get("RUNPLANE_TEST_REDIS_URL") or f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    head = base.rsplit("/", 1)[0] if base.count("/") >= 3 else base
    return f"{head}/{1 + uuid.uuid4().int % 15}"
