"""The egress guard: sandbox commands may reach the internet, never this host's own services.

Where sandboxes get a network namespace of their own (netns.py, as root by default) they cannot address this
host at all and reach the internet only through the egress proxy (egress_proxy.py); these rules then remain as
defence in depth, and are what fences sandboxes where namespaces are switched off.

With the network on (RUNPLANE_SANDBOX_NETWORK, the default) commands share the host's network
namespace, so without this guard they could connect to everything listening on loopback or on
the host's addresses: PostgreSQL (trust auth on 127.0.0.1 is common), Redis, the runplane API,
other sandboxes' dev servers, and to cloud metadata at 169.254.169.254.

When runplane runs as root every sandbox has a uid of its own from a known range, and iptables'
owner match sees that uid: bubblewrap's user namespace maps the uid commands see inside
(65534) back to the sandbox's uid, which is the kernel uid that owns their sockets. So for
packets owned by that range, in a chain of our own jumped to from OUTPUT (IPv4 and IPv6):
- ESTABLISHED,RELATED returns untouched: a sandbox's dev server answers the connections the
  preview proxy (runplane, as root) opens to it;
- new connections to loopback, to any local address of this host (they all leave through `lo`)
  and to link-local and known cloud-metadata addresses are rejected;
- everything else (npm install, pip, git clone) goes on as before.
Only the DNS port of a resolver that lives on this host (127.0.0.53, Docker's 127.0.0.11) stays open.

Known limit: the owner match sees the sender only, not who owns the listening socket, so a
command cannot reach its own sandbox's dev server on localhost either (previews still work).

Rules are added idempotently (several runplane processes, restarts) under a file lock and never
removed at shutdown: other processes on this machine may rely on them, and they only concern uids
nobody else uses. `remove_uid_range` is there for tests and operators.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import ipaddress
import logging
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runplane.config import Settings
from runplane.sandboxes.egress_policy import EgressPolicy, parse_networks
from runplane.sandboxes.isolation import IsolationInfo
from runplane.sandboxes.limits import SandboxLimits
from runplane.sandboxes.local import DEFAULT_UID_RANGE, LocalSandboxBackend
from runplane.sandboxes.networks import SandboxNetwork, SandboxNetworks

log = logging.getLogger("runplane.sandboxes.egress")

CHAIN = "RUNPLANE-SANDBOX"  # OUTPUT jumps here once; one rule per sandbox uid range
DENY_CHAIN = "RUNPLANE-SANDBOX-DENY"  # what a packet of a sandbox uid goes through
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
RESOLV_CONF = Path("/etc/resolv.conf")
_TIMEOUT = 20


@dataclass(frozen=True)
class Family:
    name: str
    iptables: str
    # Refused besides everything local: loopback, link-local (169.254.169.254 is the metadata
    # service of AWS, GCP, Azure and others), Alibaba's and AWS's (IPv6) metadata addresses.
    blocked: tuple[str, ...]
    version: int


IPV4 = Family("IPv4", "iptables", ("127.0.0.0/8", "169.254.0.0/16", "100.100.100.200/32"), 4)
IPV6 = Family("IPv6", "ip6tables", ("::1/128", "fe80::/10", "fd00:ec2::254/128"), 6)


@dataclass(frozen=True)
class EgressStatus:
    active: bool
    reason: str = ""  # why the guard is not active ("" when it is)
    refuse: bool = False  # the guard is required and missing: sandbox commands must not run
    needed: bool = True  # False: commands have no network at all, there is nothing to guard

    @property
    def refusal(self) -> str | None:
        return f"the sandbox network guard is not active: {self.reason}" if self.refuse else None


class EgressError(Exception):
    """iptables is missing or refused the rules."""


# -- rules ---------------------------------------------------------------------------------------
def deny_rules(family: Family, nameservers: list[str], extra: tuple[str, ...] = ()) -> list[str]:
    """The DENY chain, in order. The first rule carries a digest of all of them (`deny_marker`): a
    chain written by another version of these rules (or other extra networks) is rewritten as a whole,
    atomically. `extra`: networks of other machines to refuse too (RUNPLANE_SANDBOX_BLOCKED_NETWORKS)."""
    rules = [
        f"-p {proto} -m conntrack --ctorigdst {ns} --ctorigdstport 53 -j RETURN"
        for ns in nameservers
        for proto in ("udp", "tcp")
    ]
    rules += [
        "-o lo -j REJECT",
        "-m addrtype --dst-type LOCAL -j REJECT",
        *(f"-d {net} -j REJECT" for net in (*family.blocked, *family_networks(family, extra))),
    ]
    first = f"-m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment {deny_marker(rules)} -j RETURN"
    return [first, *rules]


def family_networks(family: Family, networks: tuple[str, ...]) -> list[str]:
    """The networks of `family` among `networks` (CIDRs), normalized; EgressError for one that is not a network."""
    found = []
    for text in networks:
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise EgressError(f"RUNPLANE_SANDBOX_BLOCKED_NETWORKS: {text!r} is not a network (CIDR)") from None
        if network.version == family.version:
            found.append(str(network))
    return found


def deny_marker(rules: list[str]) -> str:
    return "runplane-egress-" + hashlib.sha256("\n".join(rules).encode()).hexdigest()[:12]


def range_marker(uids: range) -> str:
    return f"runplane-uids-{uids[0]}-{uids[-1]}"


def range_rule(uids: range) -> str:
    return f"-m owner --uid-owner {uids[0]}-{uids[-1]} -m comment --comment {range_marker(uids)} -j {DENY_CHAIN}"


def local_nameservers(family: Family, resolv_conf: Path = RESOLV_CONF) -> list[str]:
    """Resolvers of resolv.conf that live on this host (loopback, link-local or a local address):
    the DENY chain would otherwise cut sandboxes off from DNS."""
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                address = ipaddress.ip_address(parts[1].split("%")[0])
            except ValueError:
                continue
            if address.version == family.version and _on_this_host(address):
                found.append(str(address))
    return found


def _on_this_host(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if address.is_loopback or address.is_link_local:
        return True
    kind = socket.AF_INET if address.version == 4 else socket.AF_INET6
    with socket.socket(kind, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(address), 0))  # only an address of this host can be bound
        except OSError:
            return False
    return True


# -- installing ----------------------------------------------------------------------------------
def tool_search_path() -> str:
    """PATH when it lists an sbin directory (a service's, root's: it decides, so a PATH without iptables hides
    it); else PATH plus the standard sbin ones (a user's shell PATH often lacks them, iptables lives there)."""
    path = os.environ.get("PATH", "")
    return path if "sbin" in path else f"{path}{os.pathsep}{SBIN_PATH}"


def _binary(name: str) -> str:
    found = shutil.which(name, path=tool_search_path())
    if found is None:
        raise EgressError(f"{name} is not installed")
    return found


def _run(argv: list[str], stdin: str | None = None) -> str:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EgressError(f"{argv[0]} failed: {exc}") from None
    if done.returncode != 0:
        raise EgressError(f"{' '.join(argv[:2])} failed: {done.stderr.strip()[:300]}")
    return done.stdout


def _missing(current: str, family: Family, uids: range, nameservers: list[str], extra: tuple[str, ...]) -> list[str]:
    """iptables-restore lines that bring the filter table to the wanted state (none when it is)."""
    lines = current.splitlines()
    wanted_deny = deny_rules(family, nameservers, extra)
    declare, append = [], []
    if f"--comment {deny_marker(wanted_deny[1:])} " not in current:
        declare.append(f":{DENY_CHAIN} - [0:0]")  # creates the chain, or empties the stale one
        append += [f"-A {DENY_CHAIN} {rule}" for rule in wanted_deny]
    if f"-N {CHAIN}" not in lines:
        declare.append(f":{CHAIN} - [0:0]")
    if f"--comment {range_marker(uids)} " not in current:
        append.append(f"-A {CHAIN} {range_rule(uids)}")
    if f"-A OUTPUT -j {CHAIN}" not in lines:
        append.append(f"-I OUTPUT 1 -j {CHAIN}")
    return declare + append


def ensure_family(family: Family, uids: range, extra: tuple[str, ...] = ()) -> None:
    """Install what is missing for one family, then read the table back to check it took."""
    iptables = _binary(family.iptables)
    restore = _binary(f"{family.iptables}-restore")
    nameservers = local_nameservers(family)
    changes = _missing(_run([iptables, "-w", "5", "-S"]), family, uids, nameservers, extra)
    if changes:
        _run([restore, "-w", "5", "--noflush"], "*filter\n" + "\n".join(changes) + "\nCOMMIT\n")
        if left := _missing(_run([iptables, "-w", "5", "-S"]), family, uids, nameservers, extra):
            raise EgressError(f"{family.iptables} did not keep the rules: {left[0]}")


def families() -> list[Family]:
    """IPv6 only where the kernel has it: ip6tables is useless (and may be absent) otherwise."""
    return [IPV4, IPV6] if Path("/proc/net/if_inet6").exists() else [IPV4]


def install(uids: range, extra: tuple[str, ...] = ()) -> None:
    """Blocking: make sure the rules for `uids` are in place, for every family (idempotent). Every
    runplane process of a machine must be given the same `extra` networks: the DENY chain is shared."""
    with _install_lock():
        for family in families():
            ensure_family(family, uids, extra)


def remove_uid_range(uids: range) -> None:
    """Blocking: drop the rule that sends `uids` through the DENY chain (chains and jump stay)."""
    with _install_lock():
        for family in families():
            with contextlib.suppress(EgressError):
                _run([_binary(family.iptables), "-w", "5", "-D", CHAIN, *range_rule(uids).split()])


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """API and worker processes starting together would otherwise both add the same jump."""
    directory = "/run" if os.access("/run", os.W_OK) else tempfile.gettempdir()
    with open(os.path.join(directory, "runplane-egress.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# -- the guard of one process --------------------------------------------------------------------
def not_applicable(settings: Settings, *, as_root: bool) -> EgressStatus | None:
    """Why the guard cannot (or need not) be installed, or None when it can be."""
    required = settings.sandbox_require_isolation
    if not settings.sandbox_network:
        return EgressStatus(False, "sandbox commands have no network (RUNPLANE_SANDBOX_NETWORK=false)", needed=False)
    if not settings.sandbox_block_host_network:
        return EgressStatus(False, "switched off (RUNPLANE_SANDBOX_BLOCK_HOST_NETWORK=false)")
    if not as_root:
        return EgressStatus(
            False,
            "runplane does not run as root, so sandbox commands run as runplane's own uid "
            "and no firewall rule can tell them apart",
            refuse=required,
        )
    if settings.sandbox_uid_count <= 0:
        return EgressStatus(False, "no sandbox uid range (RUNPLANE_SANDBOX_UID_COUNT)", refuse=required)
    return None


class EgressGuard:
    """Installs the rules once per process (on start-up, or before the first command)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.uids = range(settings.sandbox_uid_start, settings.sandbox_uid_start + settings.sandbox_uid_count)
        self._status: EgressStatus | None = None
        self._lock = asyncio.Lock()

    async def ensure(self) -> EgressStatus:
        async with self._lock:
            if self._status is None:
                self._status = await self._install()
                _log(self._status, self.uids)
            return self._status

    async def _install(self) -> EgressStatus:
        skipped = not_applicable(self.settings, as_root=os.geteuid() == 0)
        if skipped is not None:
            return skipped
        try:
            await asyncio.to_thread(install, self.uids, self.settings.sandbox_blocked_networks)
        except EgressError as exc:
            return EgressStatus(False, str(exc), refuse=self.settings.sandbox_require_isolation)
        return EgressStatus(True)


def _log(status: EgressStatus, uids: range) -> None:
    if status.active:
        log.info(
            "sandbox network guard active: uids %d-%d cannot connect to this host's own addresses, "
            "loopback or link-local/metadata addresses (iptables chain %s, %s); internet egress stays open",
            uids[0],
            uids[-1],
            CHAIN,
            "/".join(f.name for f in families()),
        )
    elif status.refuse:
        log.error(
            "sandbox network guard NOT active: %s. Sandbox commands are refused "
            "(RUNPLANE_SANDBOX_REQUIRE_ISOLATION=true); run as root with iptables, or set "
            "RUNPLANE_SANDBOX_NETWORK=false, or accept the risk with RUNPLANE_SANDBOX_BLOCK_HOST_NETWORK=false",
            status.reason,
        )
    elif not status.needed:
        log.info("sandbox network guard not installed: %s", status.reason)
    else:
        log.warning(
            "sandbox network guard NOT active: %s. Sandbox commands can connect to services on this "
            "host (database, Redis, the runplane API, other sandboxes) and to cloud metadata",
            status.reason,
        )


def egress_policy(settings: Settings) -> EgressPolicy:
    """The egress proxy's policy from RUNPLANE_SANDBOX_EGRESS* (and the networks the guard blocks too)."""
    return EgressPolicy(
        enabled=settings.sandbox_network and settings.sandbox_egress,
        allow_hosts=settings.sandbox_egress_allowlist,
        allow_networks=parse_networks(settings.sandbox_egress_allow_networks, "RUNPLANE_SANDBOX_EGRESS_ALLOW_NETWORKS"),
        deny_networks=parse_networks(settings.sandbox_blocked_networks, "RUNPLANE_SANDBOX_BLOCKED_NETWORKS"),
    )


class GuardedSandboxBackend(LocalSandboxBackend):
    """A backend whose commands wait for the guard, and are refused when it is required and missing
    (reported as missing isolation, which require_isolation already refuses)."""

    def __init__(
        self,
        base_dir: Path,
        limits: SandboxLimits | None = None,
        *,
        guard: EgressGuard,
        uid_range: range = DEFAULT_UID_RANGE,
        network_namespaces: bool = True,
        use_bwrap: bool = True,
        egress: EgressPolicy | None = None,
        bwrap: str | None = None,
    ) -> None:
        super().__init__(base_dir, limits, uid_range=uid_range, use_bwrap=use_bwrap, bwrap=bwrap)
        self.guard = guard
        # A namespace per sandbox (sandboxes/netns.py) where this host can make them; the guard stays as
        # defence in depth (and is what remains where namespaces cannot be made).
        self.networks = SandboxNetworks(self.base_dir, egress) if network_namespaces else None

    async def isolation(self) -> IsolationInfo:
        info = await super().isolation()
        refusal = (await self.guard.ensure()).refusal
        return IsolationInfo(None, refusal) if refusal else info

    async def network_namespace(self, sandbox_id: str) -> SandboxNetwork | None:
        return await self.networks.ensure(sandbox_id) if self.networks is not None else None

    async def destroy(self, sandbox_id: str) -> None:
        await super().destroy(sandbox_id)
        if self.networks is not None:
            await self.networks.remove(sandbox_id)

    async def close(self) -> None:
        await super().close()
        if self.networks is not None:
            self.networks.close()
