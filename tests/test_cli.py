"""The installed `runplane` entry point, run as real subprocesses against a temporary data dir.

The database follows the pass .ci/run is in: SQLite by default, a fresh PostgreSQL database (and
Redis, when RUNPLANE_TEST_REDIS_URL is set) with RUNPLANE_TEST_DATABASE=postgres.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import jwt
import pytest

from tests import support
from tests.support import create_postgres_database, drop_postgres_database, free_port

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"
COMMAND_TIMEOUT = 60
SERVER_START_TIMEOUT = 60
T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a private loop in a thread. These tests are synchronous on purpose: they
    stay off the session's shared event loop, where another module's stray task could fail them."""

    async def call() -> T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, call()).result(timeout=COMMAND_TIMEOUT)


def runplane_executable() -> str:
    """The console script installed beside this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("runplane")
    found = str(beside) if beside.exists() else shutil.which("runplane")
    if found is None:
        pytest.fail("the `runplane` entry point is not installed: pip install -e '.[test]'")
    return found


def clean_environment(data_dir: Path) -> dict[str, str]:
    """The caller's environment without any RUNPLANE_* setting, so a developer's shell cannot leak in."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNPLANE_")}
    env.update(RUNPLANE_DATA_DIR=str(data_dir), RUNPLANE_LOG_LEVEL="WARNING")
    return env


@dataclass
class Cli:
    data_dir: Path
    env: dict[str, str]
    postgres_database: str | None = None

    def run(self, *args: str, check: bool = True, **extra_env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [runplane_executable(), *args],
            env={**self.env, **extra_env},
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"runplane {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
        return done


@dataclass
class CliUser:
    """A user made by `runplane create-user`, and what `create-user` and `token` printed."""

    email: str
    created_output: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """A data dir and database for this module, with migrations applied by `runplane migrate`."""
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    env = clean_environment(data_dir)
    pg_name = None
    if support.test_database_kind() == "postgres":
        pg_name = run_async(create_postgres_database)
        env["RUNPLANE_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{pg_name}"
    if redis_url := support.test_redis_url():
        env["RUNPLANE_REDIS_URL"] = redis_url
    session = Cli(data_dir, env, pg_name)
    try:
        assert "migrations applied" in session.run("migrate").stdout
        yield session
    finally:
        if pg_name:
            run_async(lambda: drop_postgres_database(pg_name))


@pytest.fixture(scope="module")
def user(cli: Cli) -> CliUser:
    """`runplane create-user x@y.io --password ...` then `runplane token x@y.io` (each process is ~1 s)."""
    email = f"x-{uuid.uuid4().hex[:8]}@y.io"
    created = cli.run("create-user", email, "--password", PASSWORD)
    return CliUser(email, created.stdout.strip(), cli.run("token", email).stdout.strip())


def test_migrate_on_embedded_defaults_creates_sqlite_in_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    embedded = Cli(data_dir, clean_environment(data_dir))
    assert "migrations applied" in embedded.run("migrate").stdout
    assert (data_dir / "runplane.sqlite3").is_file()
    assert (data_dir / "jwt-secret").is_file()


def test_user_commands_refuse_to_create_a_database_elsewhere(tmp_path: Path) -> None:
    """Run from a directory without the server's data dir, they say where they looked instead of silently making a
    new, empty database there."""
    data_dir = tmp_path / "elsewhere"
    lost = Cli(data_dir, clean_environment(data_dir))
    for command in (("create-user", "x@y.io", "--password", PASSWORD), ("token", "x@y.io")):
        result = lost.run(*command, check=False)
        assert result.returncode != 0 and f"no runplane database at {data_dir / 'runplane.sqlite3'}" in result.stderr
    assert not data_dir.exists()


def test_create_user_then_token_prints_a_jwt(user: CliUser) -> None:
    match = re.fullmatch(rf"created user ([0-9a-f-]{{36}}) <{re.escape(user.email)}>", user.created_output)
    assert match, user.created_output
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", user.token), user.token
    assert jwt.get_unverified_header(user.token)["alg"] == "HS256"
    claims = jwt.decode(user.token, options={"verify_signature": False})
    assert claims["sub"] == match.group(1)
    assert claims["exp"] - claims["iat"] == 24 * 3600, "default --ttl is one day"


def test_token_honours_ttl_and_abilities(cli: Cli, user: CliUser) -> None:
    token = cli.run("token", user.email, "--ttl", "120", "--abilities", "projects:read").stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    assert claims["abilities"] == ["projects:read"]


def test_create_user_twice_and_token_for_unknown_user_fail_cleanly(cli: Cli, user: CliUser) -> None:
    again = cli.run("create-user", user.email, "--password", PASSWORD, check=False)
    assert again.returncode != 0 and again.stderr.strip().splitlines()[-1].startswith("error: ")
    unknown = cli.run("token", f"nobody-{uuid.uuid4().hex[:8]}@example.com", check=False)
    assert unknown.returncode != 0 and unknown.stderr.strip().splitlines()[-1].startswith("error: ")


def test_create_user_reads_password_from_environment(cli: Cli, served: str) -> None:
    email = f"env-{uuid.uuid4().hex[:8]}@example.com"
    cli.run("create-user", email, RUNPLANE_PASSWORD=PASSWORD)  # no --password, no terminal: the variable
    login = httpx.post(f"{served}/api/auth/token", json={"email": email, "password": PASSWORD}, timeout=10)
    assert login.status_code == 200, login.text


@pytest.fixture(scope="module")
def served(cli: Cli) -> Iterator[str]:
    """`runplane serve --port <free>` as a child process; yields its base URL."""
    port = free_port()
    log_path = cli.data_dir.parent / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [runplane_executable(), "serve", "--port", str(port)],
            env={**cli.env, "RUNPLANE_UNTRUSTED_PORT": str(free_port())},  # not --port + 1: parallel tests
            cwd=cli.data_dir.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, base_url, log_path)
        yield base_url
    finally:
        _stop(process)


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"runplane serve exited {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"runplane serve did not answer within {SERVER_START_TIMEOUT}s:\n{log_path.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_serve_answers_health(served: str) -> None:
    health = httpx.get(f"{served}/api/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"


def test_token_printed_by_cli_works_against_the_server(user: CliUser, served: str) -> None:
    me = httpx.get(f"{served}/api/auth/me", headers=user.headers, timeout=10)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == user.email
    tampered = user.token[:-2] + ("AA" if not user.token.endswith("AA") else "BB")
    rejected = httpx.get(f"{served}/api/auth/me", headers={"Authorization": f"Bearer {tampered}"}, timeout=10)
    assert rejected.status_code == 401


def test_served_graphql_and_openapi(user: CliUser, served: str) -> None:
    response = httpx.post(f"{served}/graphql", json={"query": "{ me { email } }"}, headers=user.headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["me"]["email"] == user.email
    openapi = httpx.get(f"{served}/api/openapi.json", timeout=10)
    assert openapi.status_code == 200 and "/api/health" in openapi.json()["paths"]


def test_export_schema_writes_the_committed_sdl(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "exported.graphql"
    done = cli.run("export-schema", str(target))
    assert done.stdout.strip().splitlines() == [f"wrote {target}", f"wrote {tmp_path / 'possibleTypes.json'}"]
    assert target.read_text() == (REPO / "schema.graphql").read_text(), (
        "schema.graphql is stale: run `runplane export-schema` and commit the result"
    )
    assert (tmp_path / "possibleTypes.json").read_text() == (REPO / "possibleTypes.json").read_text()


@pytest.mark.skipif(
    support.test_database_kind() != "postgres", reason="PostgreSQL pass only (RUNPLANE_TEST_DATABASE=postgres)"
)
def test_commands_use_the_postgres_database_url(cli: Cli, user: CliUser) -> None:
    """With RUNPLANE_DATABASE_URL set, users land in PostgreSQL and no SQLite file appears."""
    import asyncpg

    assert cli.postgres_database is not None
    email = user.email

    async def count_users() -> int:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{cli.postgres_database}")
        try:
            return int(await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", email))
        finally:
            await conn.close()

    assert run_async(count_users) == 1
    assert not (cli.data_dir / "runplane.sqlite3").exists()


def test_readme_documents_every_setting() -> None:
    """Every RUNPLANE_* variable the code reads appears in README.md."""
    sources = (REPO / "runplane" / "config.py").read_text() + (REPO / "runplane" / "cli.py").read_text()
    names = set(re.findall(r'_env(?:_[a-z]+)?\(\s*"([A-Z0-9_]+)"', sources))
    names |= set(re.findall(r"RUNPLANE_([A-Z0-9_]+)", sources))
    readme = (REPO / "README.md").read_text()
    missing = sorted(name for name in names if f"RUNPLANE_{name}" not in readme)
    assert not missing, f"README.md does not document: {', '.join('RUNPLANE_' + n for n in missing)}"
