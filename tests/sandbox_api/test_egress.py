"""The egress guard in a real `runplane serve` (root, iptables): installed at start-up,
sandbox commands cannot reach the server itself or Redis, and previews still reach the dev server."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import httpx
import pytest

from runplane.sandboxes.egress import range_marker, tool_search_path
from tests.sandbox_api.helpers import execute, new_sandbox
from tests.sandbox_api.serve import SandboxServer
from tests.sandbox_api.test_preview import preview_url, start_dev_server, upload
from tests.support import UserHandle

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the guard needs root: it tells sandboxes apart by their own uid"),
    pytest.mark.skipif(shutil.which("iptables", path=tool_search_path()) is None, reason="iptables is not installed"),
]

PROBE = (
    "python3 -c 'import socket, sys\n"
    "for port in sys.argv[1:]:\n"
    '    try: socket.create_connection(("127.0.0.1", int(port)), 3).close(); print(port, "open")\n'
    "    except OSError as exc: print(port, type(exc).__name__)' "
)


async def test_sandbox_cannot_reach_the_server_but_previews_work(
    client: httpx.AsyncClient, sbx: SandboxServer, alice: UserHandle
) -> None:
    start = int(sbx.process.env["RUNPLANE_SANDBOX_UID_START"])
    uids = range(start, start + int(sbx.process.env["RUNPLANE_SANDBOX_UID_COUNT"]))
    listed = await asyncio.to_thread(subprocess.run, ["iptables", "-S"], capture_output=True, text=True, check=True)
    table = listed.stdout
    assert f"--comment {range_marker(uids)} " in table  # installed at start-up, before any command
    _, sid = await new_sandbox(client, alice)
    assert sbx.sandbox_uid(sid) in uids
    api_port = int(sbx.base_url.rsplit(":", 1)[1])
    ran = await execute(client, alice, sid, PROBE + f"{api_port} 6379")
    assert ran["output"].split() == [str(api_port), "ConnectionRefusedError", "6379", "ConnectionRefusedError"], ran

    await upload(client, alice, sid, {"index.html": b"<h1>guarded preview</h1>"})
    await start_dev_server(client, alice, sid, "python3 -m http.server $PORT --bind 127.0.0.1")
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(await preview_url(client, alice, sid))
    assert page.status_code == 200 and page.text == "<h1>guarded preview</h1>"
