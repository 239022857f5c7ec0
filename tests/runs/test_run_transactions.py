"""One transaction per operation: a failure injected between the steps of an operation leaves
nothing half-made.

- initiate: project + thread + run in one transaction, the idempotency key checked first. A refusal after
  the project was inserted (tokens, here) leaves no project or thread; a retry with the same key returns the
  same project, thread and run.
- finish: the charge and the terminal status in one transaction. A crash after the charge and before the
  status (here: the status event's write fails) leaves neither a charged active run nor a stray ledger entry.

The failures are injected with monkeypatch into the session server (it runs in this process), only for
the test's own user or run, so concurrent work of the server is untouched.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from runplane.agents import lifecycle
from runplane.billing.ledger import subscription_for
from runplane.errors import QuotaExceeded
from runplane.models import AgentRun, BillingSubscription, Project, Sandbox, Thread, UsageEntry
from runplane.resolvers import billing
from tests.runs.helpers import wait_for_status
from tests.support import LiveServer, UserHandle


async def project_names(client: httpx.AsyncClient, user: UserHandle) -> list[str]:
    response = await client.get("/api/projects", headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return [p["name"] for p in (body["projects"] if isinstance(body, dict) else body)]


async def test_a_refused_initiate_leaves_no_project_or_thread(
    client: httpx.AsyncClient, alice: UserHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = billing.reserve_run_tokens

    async def refuse_alice(ctx: Any, payer: billing.RunPayer) -> None:
        if str(payer.user_id) == alice.user_id:  # after the project and thread were inserted
            raise QuotaExceeded("injected: no tokens left", limit="tokens")
        await real(ctx, payer)

    monkeypatch.setattr(billing, "reserve_run_tokens", refuse_alice)
    before = await project_names(client, alice)
    refused = await client.post(
        "/api/agent/initiate", json={"prompt": "orphan check", "name": "orphan-check"}, headers=alice.headers
    )
    assert refused.status_code == 402, refused.text
    assert await project_names(client, alice) == before
    owner = uuid.UUID(alice.user_id)
    assert not await Project.filter(owner_id=owner, name="orphan-check").exists()
    assert not await Thread.filter(owner_id=owner, title="orphan-check").exists()


async def test_a_refused_initiate_with_attachments_leaves_no_sandbox_or_files(
    server: LiveServer, client: httpx.AsyncClient, alice: UserHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attachments are written inside the initiate's transaction (they need its project's sandbox): when the
    initiate is refused afterwards, the sandbox row goes with the transaction and its directory is removed."""
    real = billing.reserve_run_tokens

    async def refuse_alice(ctx: Any, payer: billing.RunPayer) -> None:
        if str(payer.user_id) == alice.user_id:
            raise QuotaExceeded("injected: no tokens left", limit="tokens")
        await real(ctx, payer)

    monkeypatch.setattr(billing, "reserve_run_tokens", refuse_alice)
    base = server.app.state.services.sandboxes.backend.base_dir
    before = set(base.iterdir()) if base.exists() else set()
    owner = uuid.UUID(alice.user_id)
    sandboxes = await Sandbox.filter(owner_id=owner).count()
    refused = await client.post(
        "/api/agent/initiate",
        data={"prompt": "with a picture", "name": "orphan-files"},
        files=[("files", ("shot.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png"))],
        headers=alice.headers,
    )
    assert refused.status_code == 402, refused.text
    assert await Sandbox.filter(owner_id=owner).count() == sandboxes
    assert not await Project.filter(owner_id=owner, name="orphan-files").exists()
    assert (set(base.iterdir()) if base.exists() else set()) == before


async def test_an_initiate_retried_with_its_key_returns_the_same_project_thread_and_run(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    body = {"prompt": "same key twice", "name": "keyed", "idempotency_key": f"init-{uuid.uuid4()}"}
    first = await client.post("/api/agent/initiate", json=body, headers=alice.headers)
    second = await client.post("/api/agent/initiate", json=body, headers=alice.headers)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    ids = ("project_id", "thread_id", "agent_run_id")
    assert [first.json()[k] for k in ids] == [second.json()[k] for k in ids]
    assert (await project_names(client, alice)).count("keyed") == 1
    await wait_for_status(client, alice, first.json()["agent_run_id"], "completed")


async def running_run(user: UserHandle) -> AgentRun:
    """A run put straight into `running` (a factory, not a timed run): nothing executes it."""
    owner = uuid.UUID(user.user_id)
    project = await Project.create(owner_id=owner, name="finish")
    thread = await Thread.create(owner_id=owner, project=project, title="finish")
    return await AgentRun.create(
        owner_id=owner,
        project_id=project.id,
        thread=thread,
        active_thread_id=thread.id,
        model="scripted/demo",
        status="running",
        worker_id="test",
    )


async def test_finish_charges_and_ends_the_run_in_one_transaction(
    server: LiveServer, alice: UserHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = server.app.state.services
    run = await running_run(alice)
    real = lifecycle.append_event

    async def crash_on_status(run_id: uuid.UUID, type: str, payload: dict[str, Any]) -> Any:
        if run_id == run.id and type == "status":
            raise RuntimeError("injected: the process died between the charge and the status")
        return await real(run_id, type, payload)

    usage = dict(prompt_tokens=30, completion_tokens=12, total_tokens=42)
    monkeypatch.setattr(lifecycle, "append_event", crash_on_status)
    with pytest.raises(RuntimeError, match="injected"):
        await lifecycle.finish(services, run.id, "completed", **usage)
    await run.refresh_from_db()
    assert run.status == "running" and run.active_thread_id is not None
    assert not await UsageEntry.filter(run_id=run.id).exists()  # before: charged, yet still running

    monkeypatch.undo()
    assert await lifecycle.finish(services, run.id, "completed", **usage)
    await run.refresh_from_db()
    assert run.status == "completed" and run.total_tokens == 42 and run.active_thread_id is None
    assert [e.total_tokens for e in await UsageEntry.filter(run_id=run.id)] == [42]
    # Finishing again (a late executor after the reaper) changes nothing and charges nothing more.
    assert not await lifecycle.finish(services, run.id, "failed", error="late", **usage)
    assert await UsageEntry.filter(run_id=run.id).count() == 1


async def test_a_finish_racing_a_start_on_its_thread_does_not_deadlock(server: LiveServer, alice: UserHandle) -> None:
    """A start holds the owner's subscription row and then needs the thread's one active run slot; the finish of
    the thread's run must take those in the same order (charge, then status), or PostgreSQL finds a deadlock."""
    services = server.app.state.services
    owner = uuid.UUID(alice.user_id)
    await subscription_for(services.settings, owner)
    run = await running_run(alice)
    locked = asyncio.Event()

    async def start_on_the_thread() -> str:
        async with in_transaction():
            await BillingSubscription.select_for_update().get(user_id=owner)  # as billing.reserve_run_tokens
            locked.set()
            await asyncio.sleep(0.5)  # the finish runs meanwhile, up to the lock it needs
            try:
                await AgentRun.create(
                    owner_id=owner,
                    project_id=run.project_id,  # type: ignore[attr-defined]
                    thread_id=run.thread_id,  # type: ignore[attr-defined]
                    active_thread_id=run.active_thread_id,
                    model="scripted/demo",
                )
            except IntegrityError:
                return "conflict"  # the 409 a start gets while the thread's run is active
        return "started"

    start = asyncio.create_task(start_on_the_thread())
    await locked.wait()
    finished = await asyncio.wait_for(
        lifecycle.finish(services, run.id, "completed", prompt_tokens=1, completion_tokens=1, total_tokens=2), 30
    )
    assert await start == "conflict" and finished
    await run.refresh_from_db()
    assert run.status == "completed" and await UsageEntry.filter(run_id=run.id).count() == 1
