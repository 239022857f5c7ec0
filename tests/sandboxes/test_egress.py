"""The egress guard (sandboxes/egress.py) with real iptables rules and real sandbox processes: commands
cannot open connections to this host (loopback, its own addresses, Redis, PostgreSQL, ::1) nor to
link-local metadata, can still reach another host, and their dev servers still answer root.

The rules cover a uid range of this module's own (removed at the end), so that other suites running
sandboxes on this machine at the same time are not affected."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from runplane.config import Settings
from runplane.sandboxes import LocalSandboxBackend, SandboxHandle, SandboxLimits, egress
from runplane.sandboxes.errors import SandboxIsolationError
from tests.sandboxes.conftest import BackendFactory

HAVE_IPTABLES = shutil.which("iptables", path=egress.tool_search_path()) is not None
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the guard needs root: it tells sandboxes apart by their own uid"),
    pytest.mark.skipif(not HAVE_IPTABLES, reason="iptables is not installed"),
]

_BLOCK = random.randrange(0, 90)
GUARDED_UIDS = range(301_000 + _BLOCK * 100, 301_000 + _BLOCK * 100 + 100)  # apart from conftest's TEST_UIDS
PROBE = b"""import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), 3).close()
        print(target, "open")
    except ConnectionRefusedError:
        print(target, "refused")
    except OSError as exc:
        print(target, type(exc).__name__)
"""


@pytest.fixture(scope="module")
def guard() -> Iterator[range]:
    egress.install(GUARDED_UIDS)
    yield GUARDED_UIDS
    egress.remove_uid_range(GUARDED_UIDS)


@pytest.fixture
async def guarded(guard: range, base_dir: Path, mode: str) -> AsyncIterator[SandboxHandle]:
    backend = LocalSandboxBackend(
        base_dir / "guarded",
        SandboxLimits(wall_time_seconds=20, allow_unisolated=mode == "plain"),
        uid_range=guard,
        use_bwrap=mode == "bwrap",
    )
    sandbox = await backend.create("guarded")
    yield sandbox
    await backend.destroy(sandbox.id)


async def probe(sandbox: SandboxHandle, *targets: str) -> dict[str, str]:
    await sandbox.write_file("probe.py", PROBE)
    result = await sandbox.execute("python3 probe.py " + " ".join(targets))
    assert result.exit_code == 0, result.output
    return dict(line.rsplit(" ", 1) for line in result.output.splitlines())


def listener(family: socket.AddressFamily, host: str) -> socket.socket:
    server = socket.socket(family)
    server.bind((host, 0))
    server.listen()
    return server


def answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), 2).close()
    except OSError:
        return False
    return True


def own_global_address() -> str | None:
    """An IPv4 address of this host that is not loopback (connections to it still stay on this host)."""
    try:
        found = json.loads(subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, check=True).stdout)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return None
    for link in found:
        for info in link.get("addr_info", []):
            if info.get("scope") == "global":
                return str(info["local"])
    return None


async def test_host_services_are_refused_to_sandbox_commands(
    guarded: SandboxHandle, base_dir: Path, mode: str, make_backend: BackendFactory
) -> None:
    servers = [listener(socket.AF_INET, "127.0.0.1")]
    targets = [
        f"127.0.0.1:{servers[0].getsockname()[1]}",
        f"0.0.0.0:{servers[0].getsockname()[1]}",
        f"[::ffff:127.0.0.1]:{servers[0].getsockname()[1]}",
    ]
    if socket.has_ipv6 and Path("/proc/net/if_inet6").exists():
        servers.append(listener(socket.AF_INET6, "::1"))
        targets.append(f"[::1]:{servers[-1].getsockname()[1]}")
    if (address := own_global_address()) is not None:
        servers.append(listener(socket.AF_INET, address))
        targets.append(f"{address}:{servers[-1].getsockname()[1]}")
    targets += [f"127.0.0.1:{port}" for port in (6379, 5432) if answers("127.0.0.1", port)]  # Redis, PostgreSQL
    try:
        unguarded = await make_backend(base_dir / "open", mode).create("open")
        before = await probe(unguarded, *targets)
        after = await probe(guarded, *targets)
    finally:
        for server in servers:
            server.close()
    assert before == {t: "open" for t in targets}  # uids outside the guarded range still get through
    assert after == {t: "refused" for t in targets}


async def test_metadata_address_is_refused_at_once(guarded: SandboxHandle) -> None:
    # Without the rule this would time out here (no route) or reach a cloud's metadata service.
    assert await probe(guarded, "169.254.169.254:80") == {"169.254.169.254:80": "refused"}


@pytest.fixture
def other_host() -> Iterator[str]:
    """host:port of a listener in a network namespace of its own, reached over a veth pair: a machine
    that is not this host, as the internet is (there is none here)."""
    k = random.randrange(1, 250)
    ns, near, far = f"rp-egress-{k}", f"rpe{k}a", f"rpe{k}b"
    setup = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", near, "type", "veth", "peer", "name", far],
        ["ip", "link", "set", far, "netns", ns],
        ["ip", "addr", "add", f"10.251.{k}.1/30", "dev", near],
        ["ip", "link", "set", near, "up"],
        ["ip", "-n", ns, "addr", "add", f"10.251.{k}.2/30", "dev", far],
        ["ip", "-n", ns, "link", "set", far, "up"],
    ]
    server = None
    try:
        for argv in setup:
            if subprocess.run(argv, capture_output=True, check=False).returncode != 0:
                pytest.skip(f"cannot build a second network namespace here ({' '.join(argv)} failed)")
        code = f"import socket; s = socket.create_server(('10.251.{k}.2', 8080)); print('ok', flush=True)\nwhile True: s.accept()[0].close()"
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert server.stdout is not None and server.stdout.readline().strip() == b"ok"
        yield f"10.251.{k}.2:8080"
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)  # takes the veth pair with it


async def test_other_hosts_stay_reachable(guarded: SandboxHandle, other_host: str) -> None:
    assert await probe(guarded, other_host) == {other_host: "open"}


async def test_blocked_networks_are_refused_too(guard: range, guarded: SandboxHandle, other_host: str) -> None:
    """RUNPLANE_SANDBOX_BLOCKED_NETWORKS: another machine's network (a compose network with the database and
    Redis) is refused like this host. The DENY chain is shared, so the test puts the plain one back."""
    network = other_host.rsplit(".", 1)[0] + ".0/30"
    try:
        egress.install(guard, (network,))
        assert await probe(guarded, other_host) == {other_host: "refused"}
    finally:
        egress.install(guard)
    assert await probe(guarded, other_host) == {other_host: "open"}


def test_blocked_networks_are_checked_and_sorted_by_family() -> None:
    assert egress.family_networks(egress.IPV4, ("172.29.0.0/16", "fd12::/64", " 10.1.2.3/8")) == [
        "172.29.0.0/16",
        "10.0.0.0/8",
    ]
    assert egress.family_networks(egress.IPV6, ("172.29.0.0/16", "fd12::/64")) == ["fd12::/64"]
    with pytest.raises(egress.EgressError, match="not a network"):
        egress.family_networks(egress.IPV4, ("redis:6379",))


async def test_dev_server_still_answers_root_but_not_its_own_sandbox(guarded: SandboxHandle) -> None:
    """The preview proxy connects as root: the dev server's replies are ESTABLISHED and pass. The
    owner match cannot see who listens, so the sandbox's own curl to it is refused (documented)."""
    await guarded.write_file("site/index.html", b"<h1>still here</h1>")
    port = guarded.allocate_port()
    await guarded.start_session("web", "exec python3 -m http.server $PORT --bind 127.0.0.1", cwd="site", port=port)
    assert (await guarded.wait_for_dev_server("web", timeout=20)).ready
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        page = await client.get(f"http://127.0.0.1:{port}/index.html")
    assert page.status_code == 200 and page.text == "<h1>still here</h1>"
    assert await probe(guarded, f"127.0.0.1:{port}") == {f"127.0.0.1:{port}": "refused"}


def rules(binary: str) -> list[str]:
    return subprocess.run([binary, "-w", "5", "-S"], capture_output=True, text=True, check=True).stdout.splitlines()


async def test_installing_again_changes_nothing(guard: range) -> None:
    settings = Settings(sandbox_uid_start=guard[0], sandbox_uid_count=len(guard))
    for _ in range(2):
        egress.install(guard)
        assert (await egress.EgressGuard(settings).ensure()).active
    for family in egress.families():
        table = rules(family.iptables)
        assert table.count(f"-A OUTPUT -j {egress.CHAIN}") == 1
        assert table.count(f"-N {egress.CHAIN}") == 1 and table.count(f"-N {egress.DENY_CHAIN}") == 1
        assert sum(egress.range_marker(guard) + " " in line for line in table) == 1
        deny = [line for line in table if line.startswith(f"-A {egress.DENY_CHAIN} ")]
        assert len(deny) == len(egress.deny_rules(family, egress.local_nameservers(family)))


async def test_commands_are_refused_when_the_guard_is_required_but_missing(
    guard: range, base_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(egress, "SBIN_PATH", str(base_dir))  # as on a machine without iptables
    monkeypatch.setattr(egress, "tool_search_path", lambda: str(base_dir))
    for required in (True, False):
        settings = Settings(
            sandbox_uid_start=guard[0], sandbox_uid_count=len(guard), sandbox_require_isolation=required
        )
        backend = egress.GuardedSandboxBackend(
            base_dir / str(required),
            SandboxLimits(require_isolation=required),
            uid_range=guard,
            guard=egress.EgressGuard(settings),
        )
        sandbox = await backend.create("refused")
        if required:
            with pytest.raises(SandboxIsolationError, match="network guard is not active: iptables is not installed"):
                await sandbox.execute("true")
        else:
            assert (await sandbox.execute("echo ran")).output == "ran\n"
            assert "iptables is not installed" in (await backend.guard.ensure()).reason
        await backend.destroy(sandbox.id)


def test_reasons_when_the_guard_does_not_apply() -> None:
    off = egress.not_applicable(Settings(sandbox_network=False, sandbox_require_isolation=True), as_root=True)
    assert off == egress.EgressStatus(
        False, "sandbox commands have no network (RUNPLANE_SANDBOX_NETWORK=false)", needed=False
    )
    opted_out = egress.not_applicable(
        Settings(sandbox_block_host_network=False, sandbox_require_isolation=True), as_root=True
    )
    assert opted_out == egress.EgressStatus(False, "switched off (RUNPLANE_SANDBOX_BLOCK_HOST_NETWORK=false)")
    for required in (True, False):
        not_root = egress.not_applicable(Settings(sandbox_require_isolation=required), as_root=False)
        assert not_root is not None and "not run as root" in not_root.reason and not_root.refuse == required
    assert egress.not_applicable(Settings(), as_root=True) is None
