"""Credentials that keep something open (a WebSocket, a long SSE stream) are watched for as long as it is open.

A watcher fires once: at its access token's expiry (a timer), or when its session is revoked (logout, a
refresh token presented twice, DELETE of the session). Revocations made in this process reach its watchers at
once (`revoked`); those made by another process within `recheck_seconds`: one query per pass asks the database,
the source of truth, which of the watched sessions still stand."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from runplane.auth.principal import Principal
from runplane.clock import now
from runplane.models import AuthSession
from runplane.periodic import Periodic

log = logging.getLogger("runplane.auth")
RECHECK_CHUNK = 500  # session ids per query
TOKEN_EXPIRED = "Token expired"
SESSION_REVOKED = "Session revoked"


class Watcher:
    __slots__ = ("_on_lost", "_timer", "_watch", "lost", "session_id")

    def __init__(self, watch: CredentialWatch, session_id: uuid.UUID | None, on_lost: Callable[[str], None]) -> None:
        self._watch = watch
        self._on_lost = on_lost
        self._timer: asyncio.TimerHandle | None = None
        self.session_id = session_id
        self.lost: str | None = None

    def lose(self, reason: str) -> None:
        if self.lost is None:
            self.lost = reason
            self.cancel()
            self._on_lost(reason)

    def cancel(self) -> None:
        """Stop watching (the connection ended first)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._watch._forget(self)


class CredentialWatch:
    def __init__(self, recheck_seconds: float) -> None:
        self._by_session: dict[uuid.UUID, set[Watcher]] = {}
        self._rechecks = Periodic("session recheck", recheck_seconds, self.recheck, log)

    def start(self) -> None:
        self._rechecks.start()

    async def stop(self) -> None:
        await self._rechecks.stop()

    def watch(self, principal: Principal, on_lost: Callable[[str], None]) -> Watcher:
        """`on_lost(reason)` runs once, when the principal's token expires or its session is revoked."""
        watcher = Watcher(self, principal.session_id, on_lost)
        if principal.expires_at is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, principal.expires_at - time.time())
            watcher._timer = loop.call_at(loop.time() + delay, watcher.lose, TOKEN_EXPIRED)
        if principal.session_id is not None:
            self._by_session.setdefault(principal.session_id, set()).add(watcher)
        return watcher

    def revoked(self, session_id: uuid.UUID) -> None:
        for watcher in list(self._by_session.get(session_id, ())):
            watcher.lose(SESSION_REVOKED)

    @property
    def watched_sessions(self) -> int:
        return len(self._by_session)

    async def recheck(self) -> None:
        """One pass: every watched session that is revoked, expired or gone in the database loses its watchers."""
        session_ids = list(self._by_session)
        for start in range(0, len(session_ids), RECHECK_CHUNK):
            chunk = session_ids[start : start + RECHECK_CHUNK]
            standing = await AuthSession.filter(id__in=chunk, revoked_at=None, expires_at__gt=now()).values_list(
                "id", flat=True
            )
            for session_id in set(chunk) - set(standing):
                self.revoked(session_id)

    def _forget(self, watcher: Watcher) -> None:
        if watcher.session_id is None:
            return
        watchers = self._by_session.get(watcher.session_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._by_session[watcher.session_id]
