"""Rows in any state, written directly (no API round trips, no agent, no chunk delays): tests of a state machine
start from the state they are about. Every factory takes overrides as keyword arguments; ids are fresh each call.

    run = await create_run(status=RunStatus.RUNNING)            # a user, project and thread made for it
    run = await create_run(status="paused", thread=thread)       # on a given thread (its owner and project)
    await expire_lease(run)                                      # as if its worker died

Needs the database open in this process: depend on the `server` fixture (tests/conftest.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from runplane.billing.ledger import subscription_for
from runplane.clock import now
from runplane.config import Settings
from runplane.events.log import append_event
from runplane.models import AgentRun, BillingSubscription, Project, Sandbox, Thread, User
from runplane.statuses import ACTIVE_STATUSES, EXECUTING_STATUSES, RunStatus

FACTORY_WORKER = "factory-worker"
LEASE = timedelta(minutes=5)


async def create_user(**fields: Any) -> User:
    fields.setdefault("email", f"factory-{uuid.uuid4().hex[:12]}@example.com")
    return await User.create(**fields)


async def create_project(owner: User | None = None, **fields: Any) -> Project:
    owner = owner or await create_user()
    fields.setdefault("name", "factory project")
    return await Project.create(owner_id=owner.id, **fields)


async def create_thread(project: Project | None = None, **fields: Any) -> Thread:
    project = project or await create_project()
    return await Thread.create(owner_id=project.owner_id, project_id=project.id, **fields)


async def create_run(
    status: RunStatus | str = RunStatus.QUEUED, *, thread: Thread | None = None, log: bool = True, **fields: Any
) -> AgentRun:
    """A run in `status` with the columns that status implies (active thread slot, worker lease, end time), and,
    when `log`, the status event a reader would have seen last."""
    status = RunStatus(status)
    thread = thread or await create_thread()
    values: dict[str, Any] = dict(model="scripted/echo", prompt="factory prompt")
    if status in ACTIVE_STATUSES:
        values["active_thread_id"] = thread.id
    if status in EXECUTING_STATUSES:
        values.update(worker_id=FACTORY_WORKER, started_at=now(), lease_expires_at=now() + LEASE)
    if status.terminal:
        values.update(started_at=now(), completed_at=now())
    values.update(fields)
    run = await AgentRun.create(
        owner_id=thread.owner_id, project_id=thread.project_id, thread_id=thread.id, status=status, **values
    )
    if log:
        await append_event(run.id, "status", {"status": status})
        await run.refresh_from_db()
    return run


async def expire_lease(run: AgentRun, *, ago: timedelta = timedelta(seconds=1)) -> None:
    """As if the run's worker stopped renewing its lease `ago` ago."""
    await AgentRun.filter(id=run.id).update(lease_expires_at=now() - ago)


async def age(run: AgentRun, by: timedelta) -> None:
    """As if the run was created `by` ago (created_at is set on insert only)."""
    await AgentRun.filter(id=run.id).update(created_at=now() - by)


async def create_sandbox(project: Project | None = None, *, status: str = "active", **fields: Any) -> Sandbox:
    project = project or await create_project()
    values: dict[str, Any] = dict(last_active_at=now())
    if status == "stopped":
        values["stopped_at"] = now()
    values.update(fields)
    return await Sandbox.create(owner_id=project.owner_id, project_id=project.id, status=status, **values)


async def create_subscription(settings: Settings, user: User | None = None, **fields: Any) -> BillingSubscription:
    """The user's subscription (made on the default plan as on first use), then `fields` written over it
    (plan=, tokens_used=, current_period_end=, cancel_at_period_end=, ...)."""
    user = user or await create_user()
    sub = await subscription_for(settings, user.id)
    if fields:
        await BillingSubscription.filter(id=sub.id).update(**fields)
        await sub.refresh_from_db()
    return sub
