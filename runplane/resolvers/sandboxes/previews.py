"""Previews of a sandbox's dev server: signed links (runplane/auth/preview_tokens.py) and the proxy's check."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import TTLCache

from runplane.auth.preview_tokens import PreviewClaims, sign_preview_token, verify_preview_token
from runplane.errors import DomainError, ErrorCode, InvalidInput, NotFound
from runplane.models import Sandbox
from runplane.models.choices import SessionStatus
from runplane.origins import untrusted_base_url
from runplane.resolvers.context import RequestContext
from runplane.resolvers.sandboxes.lifecycle import open_sandbox
from runplane.resolvers.sandboxes.sessions import dev_server_session
from runplane.resolvers.validation import RawId, parse_uuid
from runplane.sandboxes import (
    SandboxHandle,
)
from runplane.sandboxes.egress_proxy import PORT as EGRESS_PROXY_PORT
from runplane.services import Services


class PreviewUnavailable(DomainError):
    """The preview's dev server is not running (any more) in this process."""

    code = ErrorCode.PREVIEW_UNAVAILABLE
    status = 502


@dataclass(frozen=True)
class PreviewLink:
    url: str
    port: int
    session_name: str
    expires_at: datetime


async def preview_link(
    ctx: RequestContext,
    *,
    sandbox_id: RawId,
    base_url: str,
    session_name: str | None = None,
    kind: str = "web",
    port: int | None = None,
) -> PreviewLink:
    """A URL served by this server that proxies to the dev server's port, with a short-lived signed token
    in its path (an iframe can load it without an Authorization header)."""
    row, sandbox = await open_sandbox(ctx, sandbox_id)
    if await sandbox.has_own_network():
        port_number, name = await _listening_port(sandbox, session_name, port, kind)
    else:
        port_number, name = _session_port(sandbox, session_name, port)
    settings = ctx.settings
    expires = int(time.time()) + settings.preview_token_ttl_seconds
    claims = PreviewClaims(str(ctx.user_id), str(row.id), port_number)
    token = sign_preview_token(settings.jwt_secret, claims, expires=expires)
    base = (settings.preview_base_url or untrusted_base_url(settings, base_url)).rstrip("/")  # never the API origin
    url = f"{base}/preview/{token}/"
    if kind == "expo":  # Expo Go opens exp:// (exps:// over TLS) and fetches the manifest over HTTP(S)
        url = (
            "exps://" + url.removeprefix("https://")
            if url.startswith("https://")
            else "exp://" + url.removeprefix("http://")
        )
    return PreviewLink(url, port_number, name, datetime.fromtimestamp(expires, UTC))


# A dev server started without a port of ours (Cheatcode's web app runs `pnpm dev`) listens where its framework
# likes: Next.js on 3000, Expo on 8081.
DEFAULT_PREVIEW_PORTS = {"web": 3000, "expo": 8081}
MAX_PORT = 65_535


async def _listening_port(
    sandbox: SandboxHandle, session_name: str | None, port: int | None, kind: str
) -> tuple[int, str]:
    """In the sandbox's own network namespace every port is its own: the asked port; else the dev-server
    session's PORT or the framework default, whichever something listens on; else the session's PORT (the
    preview answers 502 until its server listens, as one asked for right after the start)."""
    if port is not None:
        if not 0 < port <= MAX_PORT:
            raise InvalidInput(f"port must be between 1 and {MAX_PORT}", field="port")
        if port == EGRESS_PROXY_PORT:  # runplane's own listener in there, not the sandbox's
            raise InvalidInput(f"port {port} is the sandbox's egress proxy", field="port")
        return port, ""
    session = None
    if session_name not in (None, "") or any(s.port is not None for s in sandbox.list_sessions()):
        session = dev_server_session(sandbox, session_name)
    default = DEFAULT_PREVIEW_PORTS.get(kind, 3000)
    if session is not None and session.port is not None and session.status == SessionStatus.RUNNING:
        if await sandbox.port_accepts(session.port) or not await sandbox.port_accepts(default):
            return session.port, session.name
        return default, ""
    if await sandbox.port_accepts(default):
        return default, ""
    if session is None:
        raise NotFound(f"No dev server session, and nothing listens on port {default} in the sandbox")
    raise PreviewUnavailable(f"Session {session.name} is not running")


def _session_port(sandbox: SandboxHandle, session_name: str | None, port: int | None) -> tuple[int, str]:
    """Sandboxes on this host's network: only a port runplane gave a running session (any other could be a
    service of this host's)."""
    session = dev_server_session(sandbox, session_name)
    if session.port is None:
        raise InvalidInput(f"Session {session.name} has no port: start it with dev_server: true", field="session_name")
    if port is not None and port != session.port:
        raise InvalidInput("a port can only be chosen where sandboxes have a network of their own", field="port")
    if session.status != SessionStatus.RUNNING:
        raise PreviewUnavailable(f"Session {session.name} is not running")
    return session.port, session.name


@dataclass(frozen=True)
class PreviewTarget:
    sandbox: SandboxHandle
    port: int


async def open_preview(services: Services, token: str) -> PreviewTarget:
    """For the proxy: check the token, that its user still owns the sandbox and that the port is still
    its running dev server's; counts as activity (the idle reaper leaves a watched preview running)."""
    claims = verify_preview_token(services.settings.jwt_secret, token)
    if not await _owner_still_owns(claims.sandbox_id, claims.user_id):
        raise NotFound("Preview not found")
    sandbox = services.sandboxes.loaded(claims.sandbox_id)
    port = claims.port
    if sandbox is None:
        raise PreviewUnavailable("The dev server of this preview is not running")
    # In its own namespace any port is the sandbox's own (and reachable from every process); on this host's
    # network only a running session's port is, in the process that started it.
    if not await sandbox.has_own_network() and not any(
        s.port == port and s.status == SessionStatus.RUNNING for s in sandbox.list_sessions()
    ):
        raise PreviewUnavailable("The dev server of this preview is not running")
    sandbox.touch()
    return PreviewTarget(sandbox, port)


OWNER_CACHE_SECONDS = 5.0  # a page load fetches dozens of assets: one query per sandbox every few seconds
# Bounded (the least recently used make room) with real expiry: preview tokens name the keys.
_owner_cache: TTLCache[tuple[str, str], bool] = TTLCache(maxsize=10_000, ttl=OWNER_CACHE_SECONDS)


async def _owner_still_owns(sandbox_id: str, user_id: str) -> bool:
    key = (sandbox_id, user_id)
    if key in _owner_cache:
        return True
    if not await Sandbox.filter(id=parse_uuid(sandbox_id, "Sandbox"), owner_id=parse_uuid(user_id, "User")).exists():
        return False
    _owner_cache[key] = True
    return True
