"""Persisted queries: Apollo's and urql's automatic persisted queries (APQ) and an allow-list mode.

APQ: a client sends `extensions.persistedQuery.sha256Hash` without the document; an unknown hash answers
`PersistedQueryNotFound` (extensions.code PERSISTED_QUERY_NOT_FOUND) and the client sends document and hash
together, which registers it. Documents are registered only by signed-in callers (their requests are rate
limited), only within the document size limit, and kept bounded: an LRU with a TTL in memory, or Redis keys with
a TTL when Redis is configured (a Redis outage is a cache miss: the client falls back to the full document).

Allow-list mode (RUNPLANE_GRAPHQL_ALLOWLIST_ONLY): only operations registered in the operations file run, by
hash or as full text (compared operation by operation, printed in canonical form with the fragments they use);
APQ stops registering. `runplane register-operations` writes that file from a frontend's persisted-query
manifest or .graphql files.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Protocol

from cachetools import TTLCache
from graphql import DocumentNode, GraphQLError, parse

from runplane.graphql_media import RequestRefused
from runplane.operations_file import OperationsFile, canonical_operation

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from runplane.config import Settings

log = logging.getLogger("runplane.persisted_queries")
REDIS_PREFIX = "runplane:apq:"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class DocumentStore(Protocol):
    async def get(self, sha256: str) -> str | None: ...
    async def put(self, sha256: str, document: str) -> None: ...


class MemoryStore:
    """This process's documents: `max_bytes` of them at most (least recently used go first; documents may be
    100 000 characters long, so a count would not bound memory), each for `ttl` seconds after it was registered."""

    def __init__(self, max_bytes: int, ttl: float) -> None:
        self._documents: TTLCache[str, str] = TTLCache(maxsize=max_bytes, ttl=ttl, getsizeof=_size)

    async def get(self, sha256: str) -> str | None:
        return self._documents.get(sha256)

    async def put(self, sha256: str, document: str) -> None:
        if _size(document) <= self._documents.maxsize:  # cachetools raises for an entry over the whole budget
            self._documents[sha256] = document


class RedisStore:
    """Documents shared by every process, each key expiring `ttl` seconds after it was registered."""

    def __init__(self, redis: Redis, ttl: int) -> None:
        self.redis, self.ttl = redis, ttl

    async def get(self, sha256: str) -> str | None:
        try:
            raw = await self.redis.get(REDIS_PREFIX + sha256)
        except Exception as exc:  # Redis is a fast path that may vanish: a miss, the client sends the document
            log.warning("persisted query lookup failed: %s", exc)
            return None
        return raw.decode() if isinstance(raw, bytes) else raw

    async def put(self, sha256: str, document: str) -> None:
        try:
            await self.redis.set(REDIS_PREFIX + sha256, document, ex=self.ttl)
        except Exception as exc:
            log.warning("persisted query registration failed: %s", exc)


def _size(document: str) -> int:
    return 200 + len(document.encode())  # the key, the entry and the text


def _refused(message: str, code: str, status: int | None = None) -> RequestRefused:
    return RequestRefused(message, code=code, status=status)


class PersistedQueries:
    def __init__(self, settings: Settings, redis: Redis | None) -> None:
        self.enabled = settings.graphql_persisted_queries
        self.allowlist_only = settings.graphql_allowlist_only
        self.max_chars = settings.graphql_max_document_chars
        self.max_tokens = settings.graphql_max_tokens
        ttl = settings.graphql_persisted_queries_ttl_seconds
        self.store: DocumentStore = (
            RedisStore(redis, ttl)
            if redis is not None
            else MemoryStore(settings.graphql_persisted_queries_max_bytes, ttl)
        )
        self.registered = OperationsFile(settings.operations_file)

    async def resolve(self, query: object, extensions: object, operation_name: object, *, signed_in: bool) -> str:
        """The document to run: `query`, or the one a persisted-query hash names. Raises RequestRefused, also for
        a request of the wrong shape (WebSocket payloads reach here unchecked; HTTP bodies partly checked)."""
        _check_shape(query, extensions, operation_name)
        assert query is None or isinstance(query, str)
        assert operation_name is None or isinstance(operation_name, str)
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if persisted is not None:
            sha256 = _hash_of(persisted)
            if query is None:
                return await self._lookup(sha256)
            if sha256_hex(query) != sha256:
                raise _refused("provided sha does not match query", "PERSISTED_QUERY_HASH_MISMATCH", 400)
            if self.enabled and not self.allowlist_only and signed_in and len(query) <= self.max_chars:
                await self.store.put(sha256, query)
        if query is None:
            raise _refused("No GraphQL query found in the request", "BAD_REQUEST", 400)
        if self.allowlist_only:
            self._check_listed(query, operation_name)
        return query

    async def _lookup(self, sha256: str) -> str:
        document = self.registered.document(sha256)
        if document is None and not self.allowlist_only:
            if not self.enabled:
                raise _refused("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED")
            document = await self.store.get(sha256)
        if document is None:
            raise _refused("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
        return document

    def _check_listed(self, query: str, operation_name: str | None) -> None:
        """Allow-list mode: the operation this request runs, in canonical form, must be a registered one."""
        if self.registered.document(sha256_hex(query)) is not None:
            return
        document = self._parse(query)
        key = canonical_operation(document, operation_name) if document is not None else None
        if key is None or not self.registered.lists(key):
            raise _refused(
                "Only registered operations run on this server (runplane register-operations)",
                "PERSISTED_QUERY_NOT_IN_LIST",
                403,
            )

    def _parse(self, query: str) -> DocumentNode | None:
        if len(query) > self.max_chars:
            return None
        try:
            return parse(query, no_location=True, max_tokens=self.max_tokens)
        except GraphQLError:
            return None


def _check_shape(query: object, extensions: object, operation_name: object) -> None:
    for name, value, kinds in (
        ("query", query, "a string"),
        ("operationName", operation_name, "a string"),
        ("extensions", extensions, "an object"),
    ):
        expected = dict if name == "extensions" else str
        if value is not None and not isinstance(value, expected):
            raise _refused(
                f"The GraphQL operation's `{name}` must be {kinds} or null, if provided.", "BAD_REQUEST", 400
            )


def _hash_of(persisted: object) -> str:
    if not isinstance(persisted, dict) or persisted.get("version", 1) != 1:
        raise _refused("Unsupported persisted query version", "PERSISTED_QUERY_INVALID", 400)
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256):
        raise _refused("persistedQuery.sha256Hash must be 64 hexadecimal digits", "PERSISTED_QUERY_INVALID", 400)
    return sha256.lower()


__all__ = ["MemoryStore", "PersistedQueries", "RedisStore", "sha256_hex"]
