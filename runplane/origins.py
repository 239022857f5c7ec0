"""Untrusted pages on an origin of their own.

Sites (/sites/...) and previews (/preview/...) are pages that tenants write. Served on the API's origin, their
scripts could read that origin's storage (a bearer token GraphiQL or a web app kept there) and call the API as
the visitor. So `runplane serve` listens twice: the API on --port, and these pages on `untrusted_port` (by default
--port + 1: another port is another origin for localStorage, IndexedDB and service workers). One app serves both
sockets and `UntrustedOriginMiddleware` tells them apart by the socket the request arrived on:
- on the untrusted listener only /sites/ and /preview/ answer (anything else 404), every answer carries
  nosniff, a CSP and Referrer-Policy: no-referrer (a preview's token is in its path);
- on the API listener /sites/ and /preview/ redirect (308) to the untrusted origin; their WebSockets are refused.
With `RUNPLANE_UNTRUSTED_PORT=0` (what `Settings()` alone gives) both share the API origin, with the same headers, and a
warning at start-up. Ports do not separate cookies: runplane sets none (bearer tokens only).
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from runplane.config import Settings

log = logging.getLogger("runplane.origins")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNTRUSTED_PREFIXES = ("/sites/", "/preview/")


def is_untrusted_path(path: str) -> bool:
    return path.startswith(UNTRUSTED_PREFIXES)


def untrusted_base_url(settings: Settings, request_base_url: str) -> str:
    """Where sites and previews are reached: the configured URL, else the request's host on untrusted_port."""
    if settings.untrusted_base_url:
        return settings.untrusted_base_url.rstrip("/")
    if not settings.untrusted_port:
        return request_base_url.rstrip("/")
    parts = urlsplit(request_base_url)
    host = parts.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme or 'http'}://{host}:{settings.untrusted_port}"


SITE_ID = "{id}"
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_STORED_SITE = re.compile(rf"/sites/({_UUID})/")


class SiteHosts:
    """A host name per site, when RUNPLANE_SITES_BASE_URL names one with `{id}` (`https://{id}.sites.example.com`,
    `http://{id}.localhost:8001`): then no two tenants' sites share an origin (storage, cookies), and a site's
    absolute paths ("/assets/app.js") work. The untrusted listener maps such a host to /sites/<id>/."""

    def __init__(self, template: str | None) -> None:
        host = urlsplit(template).hostname if template else None
        self.template = template.rstrip("/") if template and host and SITE_ID in host else None
        pattern = re.escape(host or "").replace(re.escape(SITE_ID), f"(?P<id>{_UUID})")
        self.host = re.compile(pattern, re.IGNORECASE) if self.template else None

    def url(self, site_id: str) -> str:
        assert self.template is not None
        return self.template.replace(SITE_ID, site_id.lower()) + "/"

    def site_of(self, scope: Scope) -> str | None:
        """The site whose host name the request was sent to, if any."""
        if self.host is None:
            return None
        host = _header(scope, b"host") or ""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        found = self.host.fullmatch(name)
        return found.group("id").lower() if found else None


def public_site_url(settings: Settings, stored: str, request_base_url: str | None) -> str:
    """The URL of a local site stored as "/sites/<id>/": its own host when configured, else under the base URL."""
    hosts = SiteHosts(settings.sites_base_url)
    if hosts.template and (found := _STORED_SITE.fullmatch(stored)):
        return hosts.url(found.group(1))
    untrusted = untrusted_base_url(settings, request_base_url) if request_base_url else settings.untrusted_base_url
    return (settings.sites_base_url or untrusted or "").rstrip("/") + stored


def security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", settings.untrusted_csp.encode("latin-1")),
        (b"referrer-policy", b"no-referrer"),
    ]


class UntrustedOriginMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.port = settings.untrusted_port or None
        self.headers = security_headers(settings)
        self.hosts = SiteHosts(settings.sites_base_url)
        if self.port is None:
            log.warning(
                "sites and previews are served on the API's own origin (RUNPLANE_UNTRUSTED_PORT=0): "
                "their scripts can read what the API origin stores in the browser. Give them a port of their own."
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        on_untrusted = self.port is not None and _local_port(scope) == self.port
        if (on_untrusted or self.port is None) and (site := self.hosts.site_of(scope)) is not None:
            scope = _beneath(scope, f"/sites/{site}")  # a site's own host: everything on it is that site's
        elif self._moves(scope, on_untrusted):
            if scope["type"] == "websocket":
                return await _refuse(scope, receive, send, 404)
            return await _redirect(scope, send, self._moved(scope))
        untrusted_path = is_untrusted_path(scope["path"])
        if on_untrusted and not untrusted_path:
            return await _refuse(scope, receive, send, 404)
        if not untrusted_path:
            return await self.app(scope, receive, send)
        await self.app(scope, receive, self._with_headers(send))

    def _moves(self, scope: Scope, on_untrusted: bool) -> bool:
        """Asked where it is not served: a site or preview on the API origin, a site by path when sites have hosts."""
        path = scope["path"]
        if self.port is not None and not on_untrusted:
            return is_untrusted_path(path)
        return self.hosts.template is not None and _STORED_SITE.match(path) is not None

    def _moved(self, scope: Scope) -> str:
        query: str = scope.get("query_string", b"").decode("latin-1")
        path: str = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if self.hosts.template is not None and (site := _STORED_SITE.match(path)) is not None:
            return self.hosts.url(site.group(1)) + path[site.end() :] + (f"?{query}" if query else "")
        base = untrusted_base_url(self.settings, _request_base(scope))
        return base + path + (f"?{query}" if query else "")

    def _with_headers(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in self.headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + self.headers
            await send(message)

        return wrapped


def _local_port(scope: Scope) -> int | None:
    server = scope.get("server")
    return int(server[1]) if server and server[1] is not None else None


def _header(scope: Scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == name), None)


def _beneath(scope: Scope, prefix: str) -> Scope:
    """The request as if it had asked prefix + its path."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    return {**scope, "path": prefix + scope["path"], "raw_path": prefix.encode() + raw}


def _request_base(scope: Scope) -> str:
    host = _header(scope, b"host")
    if host is None and scope.get("server"):
        host = f"{scope['server'][0]}:{scope['server'][1]}"
    return f"{scope.get('scheme', 'http')}://{host or '127.0.0.1'}"


async def _redirect(scope: Scope, send: Send, location: str) -> None:
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 308, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})  # before accept: the handshake answers 403
        return
    body = b'{"detail":"Not found"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket as uvicorn binds one (reusable address, inheritable by worker processes)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock
