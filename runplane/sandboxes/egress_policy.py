"""What the egress proxy lets a sandbox reach: the internet, never this host, private networks or metadata.

Checked on the addresses a name resolves to (resolved here, by runplane, on the host), and the proxy then
connects to exactly the address that was checked: a name that resolves to 127.0.0.1 or 10.0.0.5, or one that
answers differently the second time (DNS rebinding), never leads anywhere it may not go.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Metadata services that sit on addresses `is_global` does not already refuse (Alibaba; AWS over IPv6).
METADATA = (ipaddress.ip_network("100.100.100.200/32"), ipaddress.ip_network("fd00:ec2::254/128"))


class EgressDenied(Exception):
    """The policy refuses this destination; the message says why (shown to the sandbox)."""


def parse_networks(texts: tuple[str, ...], setting: str) -> tuple[Network, ...]:
    found = []
    for text in texts:
        try:
            found.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{setting}: {text!r} is not a network (CIDR)") from None
    return tuple(found)


@dataclass(frozen=True)
class EgressPolicy:
    enabled: bool = True  # False: no proxy, so a sandbox has no way out at all
    allow_hosts: tuple[str, ...] = ()  # empty: any host; "example.com" or "*.example.com" (subdomains)
    allow_networks: tuple[Network, ...] = ()  # exceptions to the refused ranges (a private package mirror)
    deny_networks: tuple[Network, ...] = ()  # refused besides the non-global ranges (other machines of yours)

    def check_host(self, host: str) -> None:
        if self.allow_hosts and not any(_host_matches(host.lower().rstrip("."), p) for p in self.allow_hosts):
            raise EgressDenied(f"{host} is not on the egress allowlist")

    def check_address(self, address: Address) -> None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(address in network for network in self.allow_networks):
            return
        if any(address in network for network in (*METADATA, *self.deny_networks)):
            raise EgressDenied(f"{address} is refused (metadata or a blocked network)")
        if not address.is_global or address.is_multicast:
            raise EgressDenied(f"{address} is not a public internet address (loopback, private or link-local)")
        if _on_this_host(address):  # a public address of this very machine reaches the API and the database
            raise EgressDenied(f"{address} is an address of this host")

    async def resolve(self, host: str, port: int) -> list[Address]:
        """The allowed addresses of host, refusing when there is none; EgressDenied or OSError (no such name)."""
        self.check_host(host)
        try:
            addresses: list[Address] = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
        allowed, refusal = [], None
        for address in addresses:
            try:
                self.check_address(address)
                allowed.append(address)
            except EgressDenied as exc:
                refusal = exc
        if not allowed:
            raise refusal or EgressDenied(f"{host} has no address")
        return allowed


def _host_matches(host: str, pattern: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _on_this_host(address: Address) -> bool:
    """Only an address of this host can be bound (a socket, no packet; microseconds)."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True
