"""Which media type answers a GraphQL request over HTTP: JSON for queries and mutations whenever the client
accepts JSON, a stream (GraphQL over SSE, multipart) for subscriptions and for clients that accept nothing else.

urql's default Accept is `application/graphql-response+json, application/graphql+json, application/json,
text/event-stream, multipart/mixed`: Strawberry picks a stream transport whenever one is listed at all, so
every plain query of such a client came back as SSE. Here the operation's type decides first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from cachetools import LRUCache
from graphql import GraphQLError, OperationDefinitionNode, parse
from strawberry.http.streaming import SSETransport
from strawberry.types.graphql import OperationType

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
CACHED_DOCUMENT_CHARS = 16_384
_JSON_RANGES = frozenset(
    {GRAPHQL_RESPONSE_JSON, "application/graphql+json", "application/json", "application/*", "*/*"}
)


def media_ranges(accept: str) -> list[tuple[str, float]]:
    """`(media type, q)` for each range of an Accept header, lower-cased, in the order listed."""
    ranges = []
    for media_range in accept.split(","):
        kind, *params = (part.strip().lower() for part in media_range.split(";"))
        q = next((_q_value(p[2:]) for p in params if p.startswith("q=")), 1.0)
        if kind:
            ranges.append((kind, q))
    return ranges


def _q_value(raw: str) -> float:
    try:
        return min(max(float(raw), 0.0), 1.0)
    except ValueError:
        return 0.0


def negotiate_media_type(accept: str) -> str:
    """GraphQL over HTTP: application/graphql-response+json when the Accept header prefers it (highest q,
    then first listed); application/json otherwise, including no Accept, `*/*` and legacy clients."""
    best, best_q = "application/json", 0.0
    for kind, q in media_ranges(accept):
        if kind == GRAPHQL_RESPONSE_JSON and q > best_q:
            best, best_q = GRAPHQL_RESPONSE_JSON, q
        elif kind in ("application/json", "application/*", "*/*") and q > best_q:
            best, best_q = "application/json", q
    return best


def accepts_json(accept: str) -> bool:
    """True when a JSON answer is acceptable: a JSON type (or a wildcard) with q > 0, or no Accept at all."""
    ranges = media_ranges(accept)
    return not ranges or any(kind in _JSON_RANGES and q > 0 for kind, q in ranges)


class RequestRefused(Exception):
    """A GraphQL request refused before it runs (no stream for a subscription, an unknown persisted query...):
    answered as GraphQL errors, not as the REST dialect's `{"detail"}` nor as Strawberry's plain text."""

    def __init__(self, message: str, *, code: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status

    @property
    def formatted(self) -> dict[str, Any]:
        return {"message": self.message, "extensions": {"code": self.code}}


class OperationTypes:
    """The type of the operation a document runs (None: it does not parse, or names no operation; execution
    reports why). Bounded LRU by (document, operation name); documents longer than `max_chars` or over
    `max_tokens` are not parsed here (the schema's limits refuse them)."""

    def __init__(self, max_chars: int, max_tokens: int, maxsize: int = 512) -> None:
        self.max_chars = max_chars
        self.max_tokens = max_tokens
        self._cache: LRUCache[tuple[str, str | None], OperationType | None] = LRUCache(maxsize=maxsize)

    def of(self, query: str | None, operation_name: str | None) -> OperationType | None:
        if not query or len(query) > self.max_chars:
            return None
        if len(query) > CACHED_DOCUMENT_CHARS:  # parsed each time: the cache holds no 100 000-character keys
            return self._parse(query, operation_name)
        key = (query, operation_name)
        try:
            return self._cache[key]
        except KeyError:
            kind = self._cache[key] = self._parse(query, operation_name)
            return kind

    def _parse(self, query: str, operation_name: str | None) -> OperationType | None:
        try:
            document = parse(query, no_location=True, max_tokens=self.max_tokens)
        except GraphQLError:
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is not None:
            operations = [d for d in operations if d.name is not None and d.name.value == operation_name]
        elif len(operations) > 1:
            return None
        return OperationType(operations[0].operation.value) if operations else None


class LineFeedSSETransport(SSETransport):
    """GraphQL over SSE framed with `\\n` only. Strawberry frames with `\\r\\n`, which the SSE standard allows,
    but urql's and Apollo's stream readers split events on `\\n\\n` and read nothing. graphql-sse and browsers'
    EventSource read either."""

    headers: ClassVar[Mapping[str, str]] = SSETransport.headers

    def encode_event(self, event: str, data: str | None = None) -> str:
        return super().encode_event(event, data).replace("\r\n", "\n")

    def encode_comment(self, comment: str) -> str:
        return f": {comment}\n\n"
