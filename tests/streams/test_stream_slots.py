"""Every kind of stream gives its slot back on every exit path, over real connections to a real server:
run SSE, GraphQL over WebSocket (one socket, one slot, however many subscriptions), over SSE and multipart,
sandbox session and dev-server SSE, and the sessionOutput subscription. A held slot is a lease (4 per user by
default); the test of a process killed while holding them is tests/streams/test_stream_leases_cluster.py."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack

import httpx

from tests.sandbox_api.helpers import execute, new_sandbox
from tests.spawned import Process
from tests.streams.helpers import (
    RUN_EVENTS,
    STREAMS,
    abandon,
    assert_all_free,
    assert_refused,
    get_request,
    graphql_socket,
    hold,
    next_message,
    paused_run,
    run_stream_url,
    slots_held_by,
    started,
    stop_run,
    subscribe,
)
from tests.support import UserHandle, register_user


async def test_run_streams_give_their_slots_back_on_every_exit_path(
    limited: Process, http: httpx.AsyncClient, user: UserHandle
) -> None:
    run_id = await paused_run(http, user)

    async def four(stack: AsyncExitStack) -> None:
        for _ in range(STREAMS):
            await hold(stack, http, run_stream_url(run_id), user.headers)

    await slots_held_by(http, user, run_id, four)  # the client closes them mid-stream (heartbeats only)
    for _ in range(3):
        await assert_refused_while_full(http, user, run_id)  # refusals hold nothing
    # Clients that vanish (TCP reset) before the first byte of the response, and after some of it.
    request = get_request(run_stream_url(run_id), user)
    await asyncio.gather(*(abandon(limited.port or 0, request) for _ in range(STREAMS)))
    await asyncio.gather(*(abandon(limited.port or 0, request, read=200) for _ in range(STREAMS)))
    await assert_all_free(http, user, run_id)
    await stop_run(http, user, run_id)  # streams of a run that ends end too, and give their slots back
    await assert_all_free(http, user, run_id)


async def assert_refused_while_full(http: httpx.AsyncClient, user: UserHandle, run_id: str) -> None:
    async with AsyncExitStack() as stack:
        for _ in range(STREAMS):
            await hold(stack, http, run_stream_url(run_id), user.headers)
        await assert_refused(http, user, run_id)


async def test_a_client_gone_while_the_server_writes_gives_its_slot_back(
    limited: Process, http: httpx.AsyncClient, user: UserHandle
) -> None:
    """Streams of a live run (a word every 0.05 s) whose clients reset their connections mid-reply."""
    run_id = await paused_run(http, user)
    assert (await http.post(f"/api/agent-run/{run_id}/resume", headers=user.headers)).status_code == 200
    request = get_request(run_stream_url(run_id), user)
    for _ in range(3):
        await asyncio.gather(*(abandon(limited.port or 0, request, read=2000) for _ in range(STREAMS)))
    await assert_all_free(http, user, run_id)
    await stop_run(http, user, run_id)


async def test_one_websocket_holds_one_slot_however_many_subscriptions(
    limited: Process, http: httpx.AsyncClient, user: UserHandle
) -> None:
    run_id = await paused_run(http, user)
    async with AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(graphql_socket(limited.ws_url, user.access_token)) for _ in range(3)]
        for ws in sockets:  # three tabs of an app, each with five subscriptions on its socket
            for n in range(5):
                await subscribe(ws, str(n), RUN_EVENTS, {"id": run_id})
                assert (await next_message(ws, str(n)))["type"] == "next"
        await hold(stack, http, run_stream_url(run_id), user.headers)  # three sockets + one SSE: four slots
        await assert_refused(http, user, run_id)
        async with graphql_socket(limited.ws_url, user.access_token) as fifth:
            await subscribe(fifth, "x", RUN_EVENTS, {"id": run_id})
            refused = await next_message(fifth, "x")
            assert refused["type"] == "error" and refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        # A socket whose subscriptions all completed holds no slot; it takes one again for the next.
        for n in range(5):
            await sockets[0].send(json.dumps({"id": str(n), "type": "complete"}))
        await asyncio.sleep(0.3)
        await hold(stack, http, run_stream_url(run_id), user.headers)
    took = await assert_all_free(http, user, run_id)  # sockets closed by the client: their slots are back
    assert took < 2, took
    await stop_run(http, user, run_id)


async def test_graphql_streams_over_http_give_their_slots_back(
    limited: Process, http: httpx.AsyncClient, user: UserHandle
) -> None:
    run_id = await paused_run(http, user)
    body = {"query": RUN_EVENTS, "variables": {"id": run_id}}
    sse = {**user.headers, "Accept": "text/event-stream"}
    multipart = {**user.headers, "Accept": 'multipart/mixed;subscriptionSpec="1.0", application/json'}

    async def four(stack: AsyncExitStack) -> None:
        for headers in (sse, multipart, sse, multipart):
            response = await stack.enter_async_context(http.stream("POST", "/graphql", json=body, headers=headers))
            assert response.status_code == 200
            await started(stack, response)  # the stream is running: it holds its slot

    await slots_held_by(http, user, run_id, four)
    payload = json.dumps(body).encode()
    for accept in ("text/event-stream", 'multipart/mixed;subscriptionSpec="1.0"'):
        request = get_request("/graphql", user, method="POST", body=payload, accept=accept)
        await asyncio.gather(*(abandon(limited.port or 0, request, read=read) for read in (0, 0, 150, 150)))
    await assert_all_free(http, user, run_id)
    await stop_run(http, user, run_id)


async def test_sandbox_session_and_dev_server_streams_give_their_slots_back(
    limited: Process, http: httpx.AsyncClient
) -> None:
    """These kept their slots when the client closed them, on one process too."""
    user = await register_user(http)
    run_id = await paused_run(http, user)
    _, sid = await new_sandbox(http, user)
    await execute(http, user, sid, "while true; do echo tick; sleep 0.2; done", blocking=False, session_name="ticker")
    server = "python3 -m http.server $PORT --bind 127.0.0.1"
    web = await execute(http, user, sid, server, blocking=False, dev_server=True, session_name="web")
    assert web["port"], web
    session_url = f"/api/sandboxes/{sid}/sessions/ticker/stream"
    dev_url = f"/api/sandboxes/{sid}/dev-server/stream?session_name=web"

    async def four(stack: AsyncExitStack) -> None:
        for url in (session_url, dev_url, session_url, dev_url):
            await started(stack, await hold(stack, http, url, user.headers))

    await slots_held_by(http, user, run_id, four)
    for url in (session_url, dev_url):
        request = get_request(url, user)
        await asyncio.gather(*(abandon(limited.port or 0, request, read=read) for read in (0, 0, 30, 30)))
    await assert_all_free(http, user, run_id)

    async with graphql_socket(limited.ws_url, user.access_token) as ws:  # sessionOutput over a socket
        query = 'subscription($s: ID!) { sessionOutput(sandboxId: $s, sessionName: "ticker") { data } }'
        for n in range(3):
            await subscribe(ws, str(n), query, {"s": sid})
            assert (await next_message(ws, str(n)))["type"] == "next"
        async with AsyncExitStack() as stack:
            for _ in range(STREAMS - 1):
                await hold(stack, http, run_stream_url(run_id), user.headers)
            await assert_refused(http, user, run_id)
    await assert_all_free(http, user, run_id)
    await http.post(f"/api/sandboxes/{sid}/sessions/ticker/stop", headers=user.headers)
    await http.post(f"/api/sandboxes/{sid}/sessions/web/stop", headers=user.headers)
    await stop_run(http, user, run_id)
