"""runplane processes for tests: `runplane serve` (and `runplane worker`) as subprocesses, configured with
RUNPLANE_* variables exactly as an operator would.

The session server (tests/conftest.py) runs inside the test's event loop; a second app cannot share the test
process (Tortoise keeps one process-wide database context), so every server with other settings runs here.
`spawn_server` is the whole life of one: a database of the pass's kind, start, health wait, stop, clean-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from runplane.sandboxes import netns
from tests.support import ROOMY_PLAN, database_url, drop_postgres_database, free_port

ROOT = Path(__file__).resolve().parents[1]
JWT_SECRET = "spawned-test-secret-" + "s" * 40
START_TIMEOUT = 60.0  # a loaded CI machine imports the app slowly
STOP_TIMEOUT = 20.0  # SIGTERM, then SIGKILL after this
Health = Literal["live", "ready"]


def reachable_dir(prefix: str) -> Path:
    """Not pytest's tmp_path: /tmp/pytest-of-root is 0700, so sandbox uids could not reach it."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o711)
    return path


def runplane_command(*args: str) -> list[str]:
    """The installed `runplane` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("runplane")
    if script.exists():
        return [str(script), *args]
    found = shutil.which("runplane")
    return [found, *args] if found else [sys.executable, "-m", "runplane.cli", *args]


def base_env(data_dir: Path, **settings: object) -> dict[str, str]:
    """The environment of a runplane process: this one's minus any RUNPLANE_* of the developer's shell, test
    defaults, then `settings` (RUNPLANE_* names without the prefix, any case; None leaves a setting out, defaults too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        RUNPLANE_DATA_DIR=str(data_dir),
        RUNPLANE_JWT_SECRET=JWT_SECRET,
        RUNPLANE_LOG_LEVEL="WARNING",
        RUNPLANE_BILLING_DEFAULT_PLAN=ROOMY_PLAN,
        # Test clients all register from 127.0.0.1: per-address registration limits would stop the suite
        # (tests/auth/test_abuse_limits.py checks them with addresses of their own).
        RUNPLANE_REGISTRATIONS_PER_HOUR="0",
    )
    for name, value in settings.items():
        if value is None:
            env.pop(f"RUNPLANE_{name.upper()}", None)
        else:
            env[f"RUNPLANE_{name.upper()}"] = str(value)
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]
    port: int | None = None
    started_at: float = field(default_factory=time.monotonic)

    @property
    def base_url(self) -> str:
        assert self.port is not None
        return f"http://127.0.0.1:{self.port}"

    @property
    def untrusted_url(self) -> str:
        """Where this server's sites and previews are served (their own origin, runplane/origins.py)."""
        port = self.env.get("RUNPLANE_UNTRUSTED_PORT")
        return f"http://127.0.0.1:{port}" if port and port != "0" else self.base_url

    @property
    def ws_url(self) -> str:
        assert self.port is not None
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log()[-chars:]
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


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path, port: int | None = None) -> Process:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
    with open(log_path, "wb") as log:
        # Own session: signals meant for pytest (Ctrl-C, CI's timeout) do not reach it, we stop it.
        popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    return Process(name, popen, log_path, env, port)


async def wait_healthy(proc: Process, health: Health = "ready", timeout: float = START_TIMEOUT) -> None:
    """`ready` needs the database (and Redis); `live` only the process, for servers meant to run with a dependency
    down."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if not proc.alive:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
            try:
                if (await http.get(f"{proc.base_url}/api/health/{health}")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.name} not {health} after {timeout}s:\n{proc.log_tail()}")


async def start_serve(name: str, env: dict[str, str], log_dir: Path, health: Health = "ready") -> Process:
    port = free_port()
    # Sites and previews on a port of their own, as `runplane serve` does with --port + 1 (taken here: parallel tests).
    env = {"RUNPLANE_UNTRUSTED_PORT": str(free_port()), **env}
    proc = spawn(name, runplane_command("serve", "--host", "127.0.0.1", "--port", str(port)), env, log_dir, port)
    try:
        await wait_healthy(proc, health)
    except BaseException:
        await proc.stop()
        raise
    return proc


def start_worker(name: str, env: dict[str, str], log_dir: Path) -> Process:
    return spawn(name, runplane_command("worker"), env, log_dir)


@asynccontextmanager
async def spawn_server(
    tmp: Path, settings: Mapping[str, object] | None = None, *, name: str = "server", health: Health = "ready"
) -> AsyncIterator[Process]:
    """A `runplane serve` with `settings` (as base_env's) for the time of the block. Without a DATABASE_URL it
    gets a database of the pass's kind (SQLite under `tmp`, or a PostgreSQL database dropped afterwards)."""
    values = {key.upper(): value for key, value in (settings or {}).items()}
    pg_name = None
    if "DATABASE_URL" not in values:
        values["DATABASE_URL"], pg_name = await database_url(tmp)
    try:
        proc = await start_serve(name, base_env(tmp, **values), tmp / "logs", health)
        try:
            yield proc
        finally:
            await proc.stop()
            # The sandboxes' network namespaces: a server leaves them mounted, and their directories then
            # cannot be removed.
            for root in {tmp, *(Path(str(values[k])) for k in ("SANDBOX_DIR", "DATA_DIR") if values.get(k))}:
                netns.unmount_under(root)
    finally:
        if pg_name:
            await drop_postgres_database(pg_name)
