"""A network namespace per sandbox (sandboxes/netns.py): from inside a sandbox, nothing of this host's network
answers — PostgreSQL, Redis, an API-like listener, the host's own addresses, an abstract Unix socket, cloud
metadata, another sandbox's dev server — with and without bubblewrap, and with the iptables guard switched
off (the namespace alone holds). Two sandboxes both listen on 3000 and each is reached in its own namespace.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from runplane.config import Settings
from runplane.sandboxes import SandboxHandle, SandboxLimits, netns
from runplane.sandboxes.egress import EgressGuard, GuardedSandboxBackend
from tests.sandboxes.conftest import TEST_UIDS

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces are made as root")

PROBE = b"""import socket, sys
for target in sys.argv[1:]:
    if target.startswith("@"):
        sock, address = socket.socket(socket.AF_UNIX), "\\0" + target[1:]
    else:
        host, port = target.rsplit(":", 1)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock, address = socket.socket(family), (host.strip("[]"), int(port))
    sock.settimeout(3)
    try:
        sock.connect(address)
        print(target, "open")
    except OSError as exc:
        print(target, type(exc).__name__)
    finally:
        sock.close()
"""
SERVE = "python3 -c 'import http.server as h, sys; h.test(h.SimpleHTTPRequestHandler, port=3000, bind=\"127.0.0.1\")'"


@pytest.fixture
async def backend(base_dir: Path, mode: str) -> AsyncIterator[GuardedSandboxBackend]:
    """The guard is off (as on a host without iptables): what holds here is the namespace alone."""
    guard = EgressGuard(Settings(sandbox_block_host_network=False))
    made = GuardedSandboxBackend(
        base_dir,
        SandboxLimits(wall_time_seconds=30, allow_unisolated=mode == "plain"),
        guard=guard,
        uid_range=TEST_UIDS,
        use_bwrap=mode == "bwrap",
    )
    yield made
    for sandbox_id in list(made._sandboxes):
        await made.destroy(sandbox_id)
    await made.close()


@pytest.fixture
def host_listeners() -> Iterator[dict[str, str]]:
    """Stand-ins for the API and for an abstract Unix socket (a D-Bus or X11 one) on this host."""
    tcp = socket.create_server(("127.0.0.1", 0))
    address = _host_address()
    other = socket.create_server((address, 0)) if address else None
    abstract = socket.socket(socket.AF_UNIX)
    name = f"runplane-test-{os.getpid()}-{id(abstract)}"
    abstract.bind("\0" + name)
    abstract.listen()
    targets = {"api": f"127.0.0.1:{tcp.getsockname()[1]}", "abstract": "@" + name}
    if other is not None:
        targets["host address"] = f"{address}:{other.getsockname()[1]}"
    yield targets
    for sock in (tcp, other, abstract):
        if sock is not None:
            sock.close()


def _host_address() -> str | None:
    """A non-loopback address of this host (what a sandbox would try after loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def host_answers(target: str) -> bool:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), 2).close()
    except OSError:
        return False
    return True


async def probe(sandbox: SandboxHandle, *targets: str) -> dict[str, str]:
    await sandbox.write_file("probe.py", PROBE)
    result = await sandbox.execute("python3 probe.py " + " ".join(targets))
    assert result.exit_code == 0, result.output
    return dict(line.rsplit(" ", 1) for line in result.output.splitlines())


async def test_nothing_of_the_host_answers_inside(
    backend: GuardedSandboxBackend, host_listeners: dict[str, str]
) -> None:
    services = {"postgres": "127.0.0.1:5432", "redis": "127.0.0.1:6379"}
    running = {name: t for name, t in services.items() if host_answers(t)}  # what this host really runs
    targets = {**running, **host_listeners, "metadata": "169.254.169.254:80", "ipv6 loopback": "[::1]:5432"}
    sandbox = await backend.create("attacker")
    seen = await probe(sandbox, *targets.values())
    assert "open" not in seen.values(), seen
    assert set(seen) >= set(host_listeners.values())
    assert netns.is_netns(backend.networks.path("attacker"))  # type: ignore[union-attr]


async def test_host_unix_sockets_are_out_of_sight(backend: GuardedSandboxBackend, mode: str) -> None:
    """Path sockets are not a network namespace's business: bubblewrap's mount view keeps them out (PostgreSQL's
    /var/run/postgresql, a socket of runplane's own under /run). Without bubblewrap they stay reachable: the
    opt-out (RUNPLANE_SANDBOX_ALLOW_UNISOLATED) says so."""
    if mode != "bwrap":
        pytest.skip("without bubblewrap a sandbox shares this host's filesystem, path sockets included")
    path = Path(f"/run/runplane-test-{os.getpid()}-{id(backend)}.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    path.chmod(0o777)
    server.listen()
    try:
        targets = [str(path)] + [str(p) for p in Path("/var/run/postgresql").glob(".s.PGSQL.*")]
        sandbox = await backend.create("unix")
        await sandbox.write_file("unix.py", UNIX_PROBE)
        result = await sandbox.execute("python3 unix.py " + " ".join(targets))
        assert result.exit_code == 0, result.output
        assert "open" not in result.output and len(result.output.splitlines()) == len(targets), result.output
    finally:
        server.close()
        path.unlink(missing_ok=True)


UNIX_PROBE = b"""import socket, sys
for path in sys.argv[1:]:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.connect(path)
        print(path, "open")
    except OSError as exc:
        print(path, type(exc).__name__)
"""


async def test_two_sandboxes_on_port_3000_each_answer_for_themselves(backend: GuardedSandboxBackend) -> None:
    first, second = await backend.create("first"), await backend.create("second")
    for sandbox in (first, second):
        await sandbox.write_file("index.html", f"I am {sandbox.id}".encode())
        await sandbox.start_session("web", SERVE)
        assert await sandbox.wait_until_listening(3000, timeout=30)
    for sandbox in (first, second):
        assert await _get(sandbox, 3000) == f"I am {sandbox.id}"
    # From inside the first, port 3000 is its own server and the second's is nowhere to be seen.
    result = await first.execute(
        "python3 -c 'import urllib.request as u; print(u.urlopen(\"http://127.0.0.1:3000/\").read().decode())'"
    )
    assert result.output.strip() == "I am first"


async def test_a_port_taken_in_one_sandbox_is_not_taken_over_by_another(backend: GuardedSandboxBackend) -> None:
    victim, attacker = await backend.create("victim"), await backend.create("attacker2")
    await victim.write_file("index.html", b"victim")
    await victim.start_session("web", SERVE)
    assert await victim.wait_until_listening(3000, timeout=30)
    await attacker.write_file("index.html", b"attacker")
    await attacker.start_session("web", SERVE)  # binds 3000 too, in its own namespace
    assert await attacker.wait_until_listening(3000, timeout=30)
    await victim.stop_session("web")  # even with the victim's server gone, its port stays its own
    assert await _get(attacker, 3000) == "attacker"
    with pytest.raises(OSError):
        (await victim.connect(3000)).close()


async def test_destroy_removes_the_namespace(backend: GuardedSandboxBackend) -> None:
    sandbox = await backend.create("gone")
    assert (await sandbox.execute("true")).exit_code == 0
    path = backend.networks.path("gone")  # type: ignore[union-attr]
    assert netns.is_netns(path)
    await backend.destroy("gone")
    assert not path.exists()


async def _get(sandbox: SandboxHandle, port: int) -> str:
    reader, writer = await asyncio.open_connection(sock=await sandbox.connect(port))
    writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer.split(b"\r\n\r\n", 1)[1].decode()


async def test_a_thrown_away_data_dir_can_be_unmounted(backend: GuardedSandboxBackend, base_dir: Path) -> None:
    """A server stopped without destroying its sandboxes leaves their namespaces mounted (by design: other
    processes and restarts use them); tests and operators wiping the directory unmount them first."""
    for name in ("left-1", "left-2"):
        assert (await (await backend.create(name)).execute("true")).exit_code == 0
    assert len(netns.mounted_under(base_dir)) == 2
    assert netns.unmount_under(base_dir) == 2
    assert netns.mounted_under(base_dir) == []


DROPPED_PROBE = """
import asyncio, shutil, tempfile
from pathlib import Path
from runplane.sandboxes import netns
from runplane.sandboxes.networks import SandboxNetworks
base = Path(tempfile.mkdtemp(dir="/tmp"))
networks = SandboxNetworks(base)
print(asyncio.run(networks.ensure("x")), networks.reason)
print(netns.probe())
shutil.rmtree(base)
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
def test_root_without_cap_sys_admin_falls_back_and_says_why() -> None:
    """A container's root lacks CAP_SYS_ADMIN: no namespace, a reason (logged), and no crash of the command path."""
    argv = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", sys.executable, "-c", DROPPED_PROBE]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith("None ") and "CAP_SYS_ADMIN" in first, done.stdout
    assert "Operation not permitted" in second  # what start-up logs (SandboxManager.guard_network)
    assert netns.probe() == ""  # with the capability
