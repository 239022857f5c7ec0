"""The egress proxy (sandboxes/egress_proxy.py), attacked from inside a sandbox's network namespace: the only way
out is 127.0.0.1:3128 (HTTP CONNECT, absolute-URI HTTP, SOCKS5), and through it metadata, this host's services,
a name that resolves to loopback and private addresses are refused, while an allowed "internet" server (a local
fake on 127.0.0.2, allowed by allow_networks as a package mirror would be) answers. Policy unit tests at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import ipaddress
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvloop

from runplane.config import Settings
from runplane.sandboxes import SandboxHandle, SandboxLimits, netns
from runplane.sandboxes import egress_policy as egress_policy_module
from runplane.sandboxes import egress_proxy as egress_proxy_module
from runplane.sandboxes.egress import EgressGuard, GuardedSandboxBackend, egress_policy
from runplane.sandboxes.egress_policy import EgressDenied, EgressPolicy
from runplane.sandboxes.egress_proxy import EgressProxy
from runplane.sandboxes.networks import SandboxNetworks
from tests.sandboxes.conftest import TEST_UIDS

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces are made as root")
INTERNET = "127.0.0.2"  # all of 127/8 is loopback: a stand-in for a public server, allowed below

PROBE = b"""import os, socket, struct, sys, urllib.request
def connect(target):
    host, port = target.rsplit(":", 1)
    s = socket.create_connection(("127.0.0.1", 3128), 5)
    s.sendall(b"CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (target.encode(), target.encode()))
    status = s.recv(4096).split(b"\\r\\n")[0].split()[1].decode()
    if status != "200":
        return "http-" + status
    s.sendall(b"GET /hello HTTP/1.0\\r\\n\\r\\n")
    return "ok-" + b"".join(iter(lambda: s.recv(4096), b"")).split(b"\\r\\n\\r\\n", 1)[1].decode()
def socks(target):
    host, port = target.rsplit(":", 1)
    s = socket.create_connection(("127.0.0.1", 3128), 5)
    s.sendall(b"\\x05\\x01\\x00")
    assert s.recv(2) == b"\\x05\\x00"
    s.sendall(b"\\x05\\x01\\x00\\x03" + bytes([len(host)]) + host.encode() + struct.pack("!H", int(port)))
    reply = s.recv(10)
    if reply[1] != 0:
        return "socks-%d" % reply[1]
    s.sendall(b"GET /hello HTTP/1.0\\r\\n\\r\\n")
    return "ok-" + b"".join(iter(lambda: s.recv(4096), b"")).split(b"\\r\\n\\r\\n", 1)[1].decode()
def http(target):
    try:
        return "ok-" + urllib.request.urlopen("http://%s/hello" % target, timeout=10).read().decode()
    except urllib.error.HTTPError as exc:
        return "http-%d" % exc.code
def direct(target):
    host, port = target.rsplit(":", 1)
    socket.create_connection((host, int(port)), 3).close()
    return "open"
for item in sys.argv[1:]:
    how, target = item.split("=", 1)
    try:
        print(item, globals()[how](target))
    except Exception as exc:
        print(item, type(exc).__name__)
"""


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the internet"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def internet() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer((INTERNET, 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{INTERNET}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def make(base_dir: Path, mode: str, policy: EgressPolicy) -> GuardedSandboxBackend:
    """Guard off (as without iptables): the namespace and the proxy's policy are what hold."""
    return GuardedSandboxBackend(
        base_dir,
        SandboxLimits(wall_time_seconds=30, allow_unisolated=mode == "plain"),
        guard=EgressGuard(Settings(sandbox_block_host_network=False)),
        uid_range=TEST_UIDS,
        use_bwrap=mode == "bwrap",
        egress=policy,
    )


@pytest.fixture
async def backend(base_dir: Path, mode: str) -> AsyncIterator[GuardedSandboxBackend]:
    made = await make(base_dir, mode, EgressPolicy(allow_networks=(ipaddress.ip_network(f"{INTERNET}/32"),)))
    yield made
    for sandbox_id in list(made._sandboxes):
        await made.destroy(sandbox_id)
    await made.close()


async def probe(sandbox: SandboxHandle, *items: str) -> dict[str, str]:
    await sandbox.write_file("probe.py", PROBE)
    result = await sandbox.execute("python3 probe.py " + " ".join(items))
    assert result.exit_code == 0, result.output
    return dict(line.split(" ", 1) for line in result.output.splitlines())


@needs_root
async def test_allowed_server_answers_through_every_proxy_dialect(
    backend: GuardedSandboxBackend, internet: str
) -> None:
    sandbox = await backend.create("client")
    seen = await probe(sandbox, f"http={internet}", f"connect={internet}", f"socks={internet}", f"direct={internet}")
    hello = "ok-hello from the internet"
    assert seen == {
        f"http={internet}": hello,
        f"connect={internet}": hello,
        f"socks={internet}": hello,
        f"direct={internet}": "ConnectionRefusedError",  # no route but the proxy
    }


@needs_root
async def test_metadata_host_services_and_private_names_are_refused(backend: GuardedSandboxBackend) -> None:
    sandbox = await backend.create("attacker")
    targets = [
        "169.254.169.254:80",
        "127.0.0.1:5432",
        "localhost:6379",
        "10.0.0.1:80",
        "[::1]:5432",
        "[::ffff:127.0.0.1]:80",
    ]
    items = [f"{how}={t}" for t in targets for how in ("connect", "socks")]
    items += ["http=169.254.169.254:80", "http=10.0.0.1:80"]  # (localhost is NO_PROXY: the sandbox's own)
    seen = await probe(sandbox, *items)
    for item, outcome in seen.items():
        expected = "socks-2" if item.startswith("socks=") else "http-403"
        assert outcome == expected, (item, seen)


@needs_root
async def test_allowlist_and_off_switch(base_dir: Path, mode: str, internet: str) -> None:
    network = (ipaddress.ip_network(f"{INTERNET}/32"),)
    listed = await make(base_dir / "listed", mode, EgressPolicy(allow_hosts=("*.example.com",), allow_networks=network))
    off = await make(base_dir / "off", mode, EgressPolicy(enabled=False))
    try:
        seen = await probe(await listed.create("listed"), f"connect={internet}", f"socks={internet}")
        assert set(seen.values()) == {"http-403", "socks-2"}  # an allowed network, but not an allowed host
        seen = await probe(await off.create("off"), f"connect={internet}", f"direct={internet}")
        assert set(seen.values()) == {"ConnectionRefusedError"}  # no proxy at all
        assert "HTTP_PROXY" not in (await off.get("off").execute("env")).output
    finally:
        for made in (listed, off):
            for sandbox_id in list(made._sandboxes):
                await made.destroy(sandbox_id)
            await made.close()


# -- the policy itself -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.100.100.200",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "::",
    ],
)
def test_policy_refuses_non_public_addresses(address: str) -> None:
    with pytest.raises(EgressDenied):
        EgressPolicy().check_address(ipaddress.ip_address(address))


def test_policy_allows_public_and_listed() -> None:
    policy = EgressPolicy(
        allow_hosts=("registry.npmjs.org", "*.pypi.org"),
        allow_networks=(ipaddress.ip_network("10.9.0.0/16"),),
        deny_networks=(ipaddress.ip_network("8.8.4.0/24"),),
    )
    for address in ("8.8.8.8", "2606:4700::1111", "10.9.1.1"):
        policy.check_address(ipaddress.ip_address(address))
    with pytest.raises(EgressDenied):
        policy.check_address(ipaddress.ip_address("8.8.4.4"))
    policy.check_host("registry.npmjs.org")
    policy.check_host("files.pypi.org")
    for host in ("evil.com", "pypi.org.evil.com", "xpypi.org"):
        with pytest.raises(EgressDenied):
            policy.check_host(host)


async def test_policy_resolves_names_before_deciding() -> None:
    with pytest.raises(EgressDenied):
        await EgressPolicy().resolve("localhost", 80)
    assert await EgressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.0/8"),)).resolve("localhost", 80)


def test_settings_build_the_policy() -> None:
    settings = Settings(sandbox_egress_allowlist=("a.test",), sandbox_egress_allow_networks=("10.0.0.0/8",))
    policy = egress_policy(settings)
    assert policy.enabled and policy.allow_hosts == ("a.test",)
    assert not egress_policy(Settings(sandbox_egress=False)).enabled
    assert not egress_policy(Settings(sandbox_network=False)).enabled
    with pytest.raises(ValueError, match="RUNPLANE_SANDBOX_EGRESS_ALLOW_NETWORKS"):
        egress_policy(Settings(sandbox_egress_allow_networks=("nope",)))


# -- the relay on both event loops (runplane serve runs uvloop, whose transports differ) -------------------------
async def _relay_round_trip(size: int) -> tuple[bytes, bytes]:
    blob = bytes(range(256)) * (size // 256)

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(blob) + blob)
        await writer.drain()
        writer.close()

    origin = await asyncio.start_server(upstream, INTERNET, 0)
    target = f"{INTERNET}:{origin.sockets[0].getsockname()[1]}"
    policy = EgressPolicy(allow_networks=(ipaddress.ip_network(f"{INTERNET}/32"),))
    proxy = await asyncio.start_server(EgressProxy(policy, "relay").handle, "127.0.0.1", 0)
    address = proxy.sockets[0].getsockname()
    bodies = []
    for opening in (f"GET http://{target}/ HTTP/1.1\r\nHost: x\r\n\r\n", f"CONNECT {target} HTTP/1.1\r\n\r\n"):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(opening.encode())
        if opening.startswith("CONNECT"):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            writer.write(b"GET / HTTP/1.0\r\n\r\n")  # right behind, as a TLS ClientHello would be
        bodies.append((await asyncio.wait_for(reader.read(), 30)).split(b"\r\n\r\n", 1)[1])
        writer.close()
    proxy.close()
    origin.close()
    assert all(body == blob for body in bodies)
    return bodies[0], bodies[1]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_relay_carries_a_large_body_intact_on_both_loops(loop: str) -> None:
    event_loop = uvloop.new_event_loop() if loop == "uvloop" else asyncio.new_event_loop()
    try:
        event_loop.run_until_complete(_relay_round_trip(3 * 1024 * 1024))
    finally:
        event_loop.close()


def test_policy_refuses_this_hosts_own_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A public address of this machine would reach the API and the database behind the proxy's back."""
    assert egress_policy_module._on_this_host(ipaddress.ip_address("127.0.0.1"))
    assert not egress_policy_module._on_this_host(ipaddress.ip_address("8.8.8.8"))
    monkeypatch.setattr(egress_policy_module, "_on_this_host", lambda address: str(address) == "8.8.8.8")
    with pytest.raises(EgressDenied, match="this host"):
        EgressPolicy().check_address(ipaddress.ip_address("8.8.8.8"))
    EgressPolicy().check_address(ipaddress.ip_address("8.8.4.4"))


@needs_root
async def test_a_sandbox_made_anew_by_another_process_gets_this_processs_proxy(base_dir: Path) -> None:
    """Process B destroys a sandbox and makes it again (a new namespace); process A, whose listener sat in the old
    namespace, must listen in the new one rather than believe it still serves it."""
    first, second = SandboxNetworks(base_dir), SandboxNetworks(base_dir, EgressPolicy(enabled=False))
    try:
        old = await first.ensure("again")
        assert old is not None and old.proxy is not None
        await second.remove("again")
        assert await second.ensure("again") is not None  # B serves no proxy: only A's listener can answer
        new = await first.ensure("again")
        assert new is not None and new.proxy is not None
        (await first.socket_maker().connect(new.path, 3128)).close()
    finally:
        await first.remove("again")
        first.close()
        second.close()


async def test_hostile_handshakes_are_closed_without_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A head that never ends, a 2 MB head, a silent SOCKS client, garbage: each connection is closed (400 where
    HTTP applies), nothing reaches the event loop's error handler, and the proxy still serves afterwards."""
    monkeypatch.setattr(egress_proxy_module, "HEAD_TIMEOUT", 0.5)
    errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    proxy = await asyncio.start_server(
        EgressProxy(EgressPolicy(), "hostile").handle, "127.0.0.1", 0, limit=egress_proxy_module.BUFFER
    )
    address = proxy.sockets[0].getsockname()
    attacks = [
        b"GET http://a",
        b"GET /" + b"x" * (2 * 1024 * 1024),
        b"\x05",
        b"\x05\x01\x00\x05\x01",
        b"\x16\x03\x01\r\n\r\n",
    ]
    for attack in attacks:
        reader, writer = await asyncio.open_connection(*address)
        writer.write(attack)
        with contextlib.suppress(ConnectionError):
            answer = await asyncio.wait_for(reader.read(), 10)  # the proxy closes: EOF, not a hang
            assert answer in (b"", b"\x05\x00") or answer.startswith(b"HTTP/1.1 400"), (attack[:20], answer)
        writer.close()
    reader, writer = await asyncio.open_connection(*address)
    writer.write(b"CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 403")
    proxy.close()
    assert errors == []


@needs_root
async def test_restart_and_reboot_keep_one_namespace_and_bring_the_proxy_back(
    base_dir: Path, mode: str, internet: str
) -> None:
    """A runplane process that dies (its listeners go with it) and one started after it on the same directory: the
    sandbox keeps its namespace and the new process serves the proxy there. After a reboot (the mount is gone,
    its file stays) the next command gets a fresh namespace mounted over the stale file."""
    policy = EgressPolicy(allow_networks=(ipaddress.ip_network(f"{INTERNET}/32"),))
    before = await make(base_dir, mode, policy)
    sandbox = await before.create("phoenix")
    assert (await probe(sandbox, f"connect={internet}"))[f"connect={internet}"].startswith("ok-")
    assert before.networks is not None
    inode = os.stat(before.networks.path("phoenix")).st_ino
    await before.close()  # what a SIGKILL leaves: the namespace mounted, no listener of this process

    after = await make(base_dir, mode, policy)
    try:
        assert after.networks is not None
        path = after.networks.path("phoenix")
        again = after.get("phoenix")
        assert (await probe(again, f"connect={internet}"))[f"connect={internet}"].startswith("ok-")
        assert os.stat(path).st_ino == inode
        netns.unmount_under(base_dir)  # a reboot: the file stays, the mount does not
        assert path.exists() and not netns.is_netns(path)
        assert (await probe(again, f"connect={internet}"))[f"connect={internet}"].startswith("ok-")
        assert netns.is_netns(path) and os.stat(path).st_ino != inode
    finally:
        await after.destroy("phoenix")
        await after.close()
