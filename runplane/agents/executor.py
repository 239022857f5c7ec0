"""Executes one run: claim it, hold a lease with heartbeats, run the agent loop, obey STOP/pause, finish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta
from typing import Any

from runplane.agents import lifecycle
from runplane.agents.keys import run_provider
from runplane.agents.loop import AgentLoop, LoopResult
from runplane.agents.providers.base import ChatMessage, ModelProviderError, Usage
from runplane.agents.tools import CommandRecorder, ToolRunner, allowed_tools
from runplane.clock import now
from runplane.events.types import ControlMessage, ControlSignal
from runplane.models import AgentRun, Message, RunCommand
from runplane.services import Services
from runplane.statuses import EXECUTING_STATUSES, RunStatus

log = logging.getLogger("runplane.executor")
PAUSE_POLL_SECONDS = 0.25
HISTORY_LIMIT = 200


class RunStopped(Exception):
    """Raised at a checkpoint when a stop was requested."""


async def execute_run(services: Services, run_id: uuid.UUID, worker_id: str) -> None:
    settings = services.settings
    started = await lifecycle.claim(run_id, worker_id, settings.run_lease_seconds)
    if not started:
        return  # stopped while queued, or another worker has it
    await lifecycle.publish_all(services, started)
    run = await AgentRun.get(id=run_id)
    heartbeat = asyncio.create_task(
        _heartbeat(run_id, worker_id, settings.run_lease_seconds, settings.run_heartbeat_seconds)
    )
    try:
        await _execute_claimed(services, run)
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat


async def _execute_claimed(services: Services, run: AgentRun) -> None:
    progress = LoopResult()  # filled step by step: a stopped or failed run still records the tokens it used
    work = asyncio.create_task(_run_agent(services, run, progress))
    watcher = asyncio.create_task(_watch_control(services, run.id, work))
    try:
        result = await work
        await _complete(services, run, result)
    except (asyncio.CancelledError, RunStopped):
        if (task := asyncio.current_task()) is not None and task.cancelling():
            await _shield_finish(
                services, run.id, RunStatus.FAILED, progress.usage, error="The worker shut down during the run"
            )
            raise
        await _shield_finish(services, run.id, RunStatus.STOPPED, progress.usage)
    except ModelProviderError as exc:
        error = f"Model provider error: {exc.message}"
        await _shield_finish(services, run.id, RunStatus.FAILED, progress.usage, error=error)
    except Exception as exc:  # the run fails, the worker lives on
        log.exception("run %s failed", run.id)
        error = f"Internal error: {type(exc).__name__}"
        await _shield_finish(services, run.id, RunStatus.FAILED, progress.usage, error=error)
    finally:
        watcher.cancel()
        work.cancel()


async def _shield_finish(
    services: Services, run_id: uuid.UUID, status: RunStatus, usage: Usage, *, error: str | None = None
) -> None:
    await asyncio.shield(
        lifecycle.finish(
            services,
            run_id,
            status,
            error=error,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        )
    )


async def _run_agent(services: Services, run: AgentRun, progress: LoopResult) -> LoopResult:
    tools = ToolRunner(
        lambda: services.sandbox_for_project(run.project_id), _command_recorder(run.id), allowed_tools(run.abilities)
    )
    async with run_provider(services, run) as provider:  # the owner's own key, if they stored one
        loop = AgentLoop(
            provider,
            run.model.split("/", 1)[-1] if run.model.startswith("scripted/") else run.model,
            tools,
            lambda type, payload: _emit(services, run.id, type, payload),
            lambda: _checkpoint(run.id),
            services.settings.max_agent_steps,
        )
        result = await loop.run(await _history(run), progress)
    # A pause that came during the last model reply holds the run here: a paused run must not complete.
    await _checkpoint(run.id)
    return result


async def _emit(services: Services, run_id: uuid.UUID, type: str, payload: dict[str, Any]) -> None:
    await lifecycle.emit(services, run_id, type, payload)


async def _history(run: AgentRun) -> list[ChatMessage]:
    rows = await Message.filter(thread_id=run.thread_id).order_by("-created_at").limit(HISTORY_LIMIT)
    return [ChatMessage(row.role, row.content) for row in reversed(rows) if row.role in {"user", "assistant"}]


async def _checkpoint(run_id: uuid.UUID) -> None:
    """Between steps: stop if asked; wait while paused (the pause may come from any process)."""
    while True:
        row = await AgentRun.filter(id=run_id).values("status", "stop_requested")
        if not row or row[0]["stop_requested"] or row[0]["status"] not in EXECUTING_STATUSES:
            raise RunStopped()
        if row[0]["status"] == RunStatus.RUNNING:
            return
        await asyncio.sleep(PAUSE_POLL_SECONDS)


async def _watch_control(services: Services, run_id: uuid.UUID, work: asyncio.Task[Any]) -> None:
    """STOP on agent_run:{id}:control cancels the work at once, from whichever process sent it."""
    subscription = await services.event_bus.subscribe(str(run_id))
    try:
        async for item in subscription:
            if isinstance(item, ControlMessage) and item.signal == ControlSignal.STOP:
                work.cancel()
                return
    except Exception:  # the bus went away: the checkpoint still sees stop_requested
        return
    finally:
        subscription.close()


async def _heartbeat(run_id: uuid.UUID, worker_id: str, lease: int, every: int) -> None:
    while True:
        await asyncio.sleep(every)
        await AgentRun.filter(id=run_id, worker_id=worker_id, status__in=EXECUTING_STATUSES).update(
            lease_expires_at=now() + timedelta(seconds=lease)
        )


def _command_recorder(run_id: uuid.UUID) -> CommandRecorder:
    async def record(
        *, command: str, exit_code: int | None, duration_ms: int, output_bytes: int, timed_out: bool
    ) -> None:
        await RunCommand.create(
            run_id=run_id,
            command=command[:10_000],
            exit_code=exit_code,
            duration_ms=duration_ms,
            output_bytes=output_bytes,
            timed_out=timed_out,
        )

    return record


async def _complete(services: Services, run: AgentRun, result: LoopResult) -> None:
    if result.final_text:
        await Message.create(thread_id=run.thread_id, role="assistant", content=result.final_text[:100_000])
    usage = result.usage
    await lifecycle.finish(
        services,
        run.id,
        RunStatus.COMPLETED,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )
