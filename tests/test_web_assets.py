"""GraphiQL and /api/docs work with no internet: their assets ship in the package (runplane/static/vendor, copied
from pinned npm packages by scripts/vendor_web_assets.py), and a headless Chromium that may reach nothing but the
server loads both pages and runs a request in each."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.support import LiveServer

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "runplane" / "static" / "vendor"
PAGES_JS = Path(__file__).with_name("js") / "offline_pages.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def test_vendored_files_are_the_pinned_packages_builds() -> None:
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    pins = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    assert len(manifest) == 8
    for name, entry in manifest.items():
        data = (VENDOR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert pins[entry["package"]] == entry["version"], (name, "package.json pins another version")
        source = ROOT / "node_modules" / entry["package"] / entry["path"]
        if source.exists():  # after `npm ci`: the copy is that build, byte for byte
            assert source.read_bytes() == data, (name, "re-run scripts/vendor_web_assets.py")


async def test_pages_reference_only_the_servers_own_assets(client: httpx.AsyncClient) -> None:
    for path in ("/graphql", "/api/docs"):
        page = await client.get(path, headers={"Accept": "text/html"})
        assert page.status_code == 200 and "https://" not in page.text and "unpkg" not in page.text
        for asset in [part.split('"')[0] for part in page.text.split('="/static/')[1:]]:
            served = await client.get("/static/" + asset)
            assert served.status_code == 200 and len(served.content) > 100, asset


@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason="needs Chromium (apt-get install chromium); CI installs it",
)
async def test_graphiql_and_docs_work_offline_in_chromium(server: LiveServer) -> None:
    assert shutil.which("node"), "node is needed for playwright-core"
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(PAGES_JS),
        server.base_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CHROMIUM": CHROMIUM},
        cwd=str(ROOT),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["blocked"] == [], result["blocked"]  # nothing tried to leave the machine
    assert '"__typename": "Query"' in result["graphiql"]
    assert result["docs"]["status"] == "401" and "Authentication" in result["docs"]["body"], result["docs"]
    assert result["docs"]["operations"] > 50
