"""uvicorn's httptools protocol with deadlines for slow clients, and an access log without credentials.

uvicorn arms no timer while a request is being received: its keep-alive timeout runs only between requests, so
a client that trickles header lines (slowloris) or pauses inside a body holds its connection forever. Here a
request's headers must be complete `header_timeout` seconds after its first byte (or the connection's start),
and a body may pause at most `body_timeout` seconds between chunks; past either the connection is closed (the
application, if it was reading the body, sees the client gone).

Built on uvicorn internals (HttpToolsProtocol's parser callbacks `on_message_begin`, `on_headers_complete`,
`on_body`, `on_message_complete` and its `transport`): uvicorn is pinned below the next minor in pyproject.toml
and tests/streams/test_slow_clients.py runs real slow clients against `runplane serve`. The deadlines come from
the uvicorn Config (`runplane serve` makes a DeadlineConfig, which carries `header_timeout` and `body_timeout`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from uvicorn import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0


class DeadlineConfig(Config):
    """uvicorn's Config with the two deadlines; it reaches every worker process with the rest of the config."""

    def __init__(
        self,
        *args: Any,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = float(getattr(self.config, "header_timeout", DEFAULT_HEADER_TIMEOUT))
        self.body_timeout = float(getattr(self.config, "body_timeout", DEFAULT_BODY_TIMEOUT))
        self._deadline: asyncio.TimerHandle | None = None

    # uvicorn's own signature (a Transport, not asyncio.Protocol's BaseTransport) carries the same ignore.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)  # the first request's headers are due from the connection's start

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a later request on a kept-alive connection: due from its first byte
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if not self.transport.is_closing() and self.parser is not None and not self.parser.should_upgrade():
            self._arm(self.body_timeout)  # disarmed at once by on_message_complete when there is no body

    def on_body(self, body: bytes) -> None:
        self._arm(self.body_timeout)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


# `?token=...`, `&access_token=...` and the like: credentials that EventSource clients put in URLs.
_QUERY_CREDENTIAL = re.compile(r"((?:^|[?&])(?:token|access_token|refresh_token|api_key)=)[^&\s\"]*", re.IGNORECASE)
# Preview links carry their short-lived token as a path segment: /preview/<token>/...
_PREVIEW_TOKEN = re.compile(r"(/preview/)[^/?\s\"]+")


def redact(text: str) -> str:
    return _PREVIEW_TOKEN.sub(r"\1[redacted]", _QUERY_CREDENTIAL.sub(r"\1[redacted]", text))


class RedactCredentials(logging.Filter):
    """uvicorn's access log writes each request's path with its query string: tokens must not reach the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def redact_access_log() -> None:
    """Idempotent: each worker process of `runplane serve` calls it when it builds the app."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactCredentials) for f in logger.filters):
        logger.addFilter(RedactCredentials())
