"""Automatic persisted queries as Apollo Client and urql speak them (extensions.persistedQuery.sha256Hash):
an unknown hash answers PersistedQueryNotFound, hash and document together register it (signed-in callers
only), then the hash alone runs it, over POST, GET and WebSocket. Storage is bounded (LRU+TTL in memory, keys
with a TTL in Redis) and a Redis outage is a miss, never an error."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest

from runplane.config import Settings
from runplane.persisted_queries import REDIS_PREFIX, MemoryStore, PersistedQueries, RedisStore
from tests.streams.helpers import graphql_socket, next_message
from tests.support import LiveServer, UserHandle, free_port, test_redis_url


def document() -> str:
    """A document no other test registered (the server's store is shared by the session)."""
    return f"query Me{uuid.uuid4().hex[:8]} {{ me {{ id email }} }}"


def persisted(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}


async def send(client: httpx.AsyncClient, user: UserHandle | None, **body: Any) -> httpx.Response:
    headers = {**(user.headers if user else {}), "Accept": "application/json"}
    return await client.post("/graphql", json=body, headers=headers)


def code_of(answer: httpx.Response) -> str:
    (error,) = answer.json()["errors"]
    return str(error["extensions"]["code"])


async def test_unknown_hash_then_register_then_hash_alone(client: httpx.AsyncClient, alice: UserHandle) -> None:
    query = document()
    missing = await send(client, alice, extensions=persisted(query))
    assert missing.status_code == 200 and missing.headers["cache-control"] == "no-store", missing.text
    assert (
        missing.json()["errors"][0]["message"] == "PersistedQueryNotFound"
        and code_of(missing) == "PERSISTED_QUERY_NOT_FOUND"
    )
    registered = await send(client, alice, query=query, extensions=persisted(query))
    assert registered.json()["data"]["me"]["email"] == alice.email, registered.text
    by_hash = await send(client, alice, extensions=persisted(query))
    assert by_hash.json()["data"]["me"]["email"] == alice.email, by_hash.text


async def test_cacheable_queries_run_by_hash_over_get(client: httpx.AsyncClient, alice: UserHandle) -> None:
    query = document()
    await send(client, alice, query=query, extensions=persisted(query))
    params = {"extensions": json.dumps(persisted(query))}
    for accept in ("application/graphql-response+json,application/json;q=0.9", "*/*"):  # Apollo's, curl's
        answer = await client.get("/graphql", params=params, headers={**alice.headers, "Accept": accept})
        assert answer.status_code == 200 and answer.json()["data"]["me"]["email"] == alice.email, answer.text
        assert "accept" in answer.headers["vary"].lower()  # a cache keeps JSON and streams apart


async def test_a_mutation_by_hash_over_get_is_405(client: httpx.AsyncClient, alice: UserHandle) -> None:
    mutation = "mutation { logout { __typename } }"
    params = {"query": mutation, "extensions": json.dumps(persisted(mutation))}
    answer = await client.get("/graphql", params=params, headers=alice.headers)
    assert answer.status_code == 405 and answer.headers["allow"] == "POST", answer.text


async def test_anonymous_callers_do_not_register(client: httpx.AsyncClient) -> None:
    query = f"query Anonymous{uuid.uuid4().hex[:8]} {{ __typename }}"
    ran = await send(client, None, query=query, extensions=persisted(query))
    assert ran.json()["data"]["__typename"] == "Query", ran.text  # it runs, and is not stored
    assert code_of(await send(client, None, extensions=persisted(query))) == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    "extensions, code",
    [
        ({"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}, "PERSISTED_QUERY_HASH_MISMATCH"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "not-a-hash"}}, "PERSISTED_QUERY_INVALID"),
        ({"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}}, "PERSISTED_QUERY_INVALID"),
        ({"persistedQuery": "x"}, "PERSISTED_QUERY_INVALID"),
    ],
)
async def test_bad_persisted_query_extensions_are_400s(
    client: httpx.AsyncClient, alice: UserHandle, extensions: dict[str, Any], code: str
) -> None:
    answer = await send(client, alice, query="{ __typename }", extensions=extensions)
    assert answer.status_code == 400 and code_of(answer) == code, answer.text


async def test_websocket_operations_run_by_hash(
    server: LiveServer, client: httpx.AsyncClient, alice: UserHandle
) -> None:
    query = document()
    async with graphql_socket(server.ws_url, alice.access_token) as ws:
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"extensions": persisted(query)}}))
        missing = await next_message(ws, "1")
        assert missing["type"] == "error" and missing["payload"][0]["message"] == "PersistedQueryNotFound", missing
        await send(client, alice, query=query, extensions=persisted(query))
        await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": {"extensions": persisted(query)}}))
        answer = await next_message(ws, "2")
        assert answer["type"] == "next" and answer["payload"]["data"]["me"]["email"] == alice.email, answer


async def test_memory_storage_is_bounded() -> None:
    store = MemoryStore(max_bytes=3 * 1200, ttl=3600)  # three 1 000-character documents, with their overhead
    for n in range(4):
        await store.put(f"{n:064x}", f"{{ a{n} }}".ljust(1000))
    assert await store.get(f"{0:064x}") is None and (await store.get(f"{3:064x}") or "").startswith("{ a3 }")
    await store.put("f" * 64, "{ a }".ljust(5000))  # larger than the whole budget: not kept, nothing breaks
    assert await store.get("f" * 64) is None and await store.get(f"{3:064x}") is not None


async def test_redis_keys_expire_and_an_outage_is_a_miss() -> None:
    from redis.asyncio import Redis

    if (url := test_redis_url()) is None:
        pytest.skip("the PostgreSQL+Redis pass checks Redis storage")
    redis = Redis.from_url(url)
    sha256 = uuid.uuid4().hex * 2
    try:
        await RedisStore(redis, ttl=60).put(sha256, "{ a }")
        assert await RedisStore(redis, ttl=60).get(sha256) == "{ a }"
        assert 0 < await redis.ttl(REDIS_PREFIX + sha256) <= 60
    finally:
        await redis.delete(REDIS_PREFIX + sha256)
        await redis.aclose()
    gone = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    try:
        await RedisStore(gone, ttl=60).put(sha256, "{ a }")  # no error
        assert await RedisStore(gone, ttl=60).get(sha256) is None
    finally:
        await gone.aclose()


async def test_with_apq_switched_off_clients_are_told_it_is_not_supported(tmp_path: Any) -> None:
    from runplane.graphql_media import RequestRefused

    queries = PersistedQueries(Settings(data_dir=tmp_path, graphql_persisted_queries=False), None)
    with pytest.raises(RequestRefused) as refused:
        await queries.resolve(None, persisted("{ a }"), None, signed_in=True)
    assert refused.value.message == "PersistedQueryNotSupported"
    assert await queries.resolve("{ a }", persisted("{ a }"), None, signed_in=True) == "{ a }"  # runs, not stored
    assert await queries.store.get(persisted("{ a }")["persistedQuery"]["sha256Hash"]) is None
