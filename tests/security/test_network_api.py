"""From a sandbox of a real `runplane serve` (API-run commands, root, the default settings): the API's own port,
PostgreSQL and Redis answer neither directly (the namespace has only its loopback) nor through the egress proxy
(refused after resolution), and the commands see the proxy variables."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import httpx
import pytest

from tests.sandbox_api.helpers import execute, new_sandbox
from tests.sandbox_api.serve import SandboxServer
from tests.support import UserHandle

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces are made as root")

PROBE = """
import os, socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), 3).close()
        direct = "open"
    except OSError as exc:
        direct = type(exc).__name__
    s = socket.create_connection(("127.0.0.1", 3128), 5)
    s.sendall(("CONNECT %s HTTP/1.1\\r\\n\\r\\n" % target).encode())
    print(target, direct, s.recv(200).split(b"\\r\\n")[0].decode())
print("proxy", os.environ["HTTPS_PROXY"], os.environ["no_proxy"])
"""


async def test_the_api_database_and_redis_are_out_of_reach(
    client: httpx.AsyncClient, sbx: SandboxServer, alice: UserHandle
) -> None:
    _, sid = await new_sandbox(client, alice, "prober")
    api = urlsplit(sbx.base_url)
    targets = [f"127.0.0.1:{api.port}", "127.0.0.1:5432", "127.0.0.1:6379", f"localhost:{api.port}"]
    upload = await client.post(
        f"/api/sandboxes/{sid}/files", files=[("file", ("probe.py", PROBE.encode()))], headers=alice.headers
    )
    assert upload.status_code == 200, upload.text
    result = await execute(client, alice, sid, "python3 probe.py " + " ".join(targets))
    lines = result["output"].strip().splitlines()
    assert len(lines) == len(targets) + 1, result
    assert lines[-1] == "proxy http://127.0.0.1:3128 localhost,127.0.0.1,::1", result
    for line in lines[:-1]:
        _, direct, through_proxy = line.split(" ", 2)
        assert direct == "ConnectionRefusedError", line  # nothing listens on the namespace's own loopback
        assert through_proxy.startswith("HTTP/1.1 403"), line
