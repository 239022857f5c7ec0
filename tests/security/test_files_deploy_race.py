"""The deploy symlink-swap escape (a critical finding of a security review), replayed as reported, through the
public API of a real `runplane serve`.

A sandbox command loops renameat2(RENAME_EXCHANGE) between `dist/x` (a real directory) and `dist/x_l`, a symlink to
a directory of the server's holding a root-only secret (standing for /etc, the data dir, /proc/self), while the
user keeps calling `POST /api/project/{id}/deploy/git/update {"source_dir": "dist"}` and fetches
`<site>/x_l/shadow`. Before the fd walker this served the secret within 1-6 deploys; now no deploy may publish a
byte from outside the workspace.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integrations.conftest import Configured, cclient, configured  # noqa: F401 - fixtures
from tests.sandbox_api.helpers import execute
from tests.security.test_files_race import CANARY, RACE_LIMIT_SECONDS, RACER
from tests.spawned import reachable_dir
from tests.support import UserHandle, register_user

DEPLOYS = 6  # the old code served the secret within 1-6 deploys


async def raced(client: httpx.AsyncClient, user: UserHandle, sid: str) -> bool:
    """The racer's `progress` file exists: it has swapped 1,000 times (however loaded the machine is)."""
    listed = await client.get(f"/api/sandboxes/{sid}/files", params={"path": "."}, headers=user.headers)
    return listed.status_code == 200 and "progress" in listed.text


@pytest.fixture
def outside() -> Iterator[Path]:
    path = reachable_dir("runplane-outside-")
    (path / "shadow").write_bytes(CANARY)
    (path / "shadow").chmod(0o600)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_deploys_under_the_rename_race_publish_nothing_from_outside(
    cclient: httpx.AsyncClient,  # noqa: F811
    outside: Path,
) -> None:
    client = cclient
    user = await register_user(client)
    project = await client.post("/api/projects", json={"name": "race"}, headers=user.headers)
    pid = project.json()["project_id"]
    ensured = await client.post(f"/api/project/{pid}/sandbox/ensure-active", headers=user.headers)
    assert ensured.status_code == 200, ensured.text
    sid = ensured.json()["sandbox_id"]
    files = {"dist/index.html": b"<h1>site</h1>", "dist/x/shadow": b"inside", "racer.py": RACER.encode()}
    uploaded = await client.post(
        f"/api/sandboxes/{sid}/files",
        files=[("file", (p.rsplit("/", 1)[-1], d)) for p, d in files.items()],
        data={"path": list(files)},
        headers=user.headers,
    )
    assert uploaded.status_code == 200, uploaded.text
    assert (await execute(client, user, sid, f"ln -s {outside} dist/x_l"))["exit_code"] == 0
    first = await client.post(f"/api/project/{pid}/deploy/git", json={"source_dir": "dist"}, headers=user.headers)
    assert first.status_code == 201, first.text

    racer = asyncio.create_task(execute(client, user, sid, "python3 racer.py", timeout=RACE_LIMIT_SECONDS + 30))
    deploys = 0
    try:
        async with httpx.AsyncClient(timeout=30) as browser:
            while deploys < DEPLOYS or not await raced(client, user, sid):
                assert not racer.done(), "the racer ended before the deploys did"
                updated = await client.post(
                    f"/api/project/{pid}/deploy/git/update", json={"source_dir": "dist"}, headers=user.headers
                )
                assert updated.status_code in (200, 400), updated.text  # 400: dist itself was mid-swap (a link)
                assert CANARY.decode() not in updated.text
                if updated.status_code != 200:
                    continue
                deploys += 1
                url = updated.json()["url"]
                for path in ("x_l/shadow", "x/shadow", "x_l/", "x/"):
                    page = await browser.get(url + path)
                    assert CANARY not in page.content, f"deploy {deploys} served {path} from outside the workspace"
    finally:
        stop = await client.post(
            f"/api/sandboxes/{sid}/files",
            files=[("file", ("stop", b""))],
            data={"path": ["stop"]},
            headers=user.headers,
        )
        assert stop.status_code == 200, stop.text
    assert (await racer)["exit_code"] == 0
    swaps = int((await execute(client, user, sid, "cat swaps"))["output"])
    assert swaps > 1000, swaps
