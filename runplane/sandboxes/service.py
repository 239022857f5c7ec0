"""Project sandboxes on top of the backend: the row per project, waking, idle stopping, process state.

`SandboxManager` is what Services holds: the LocalSandboxBackend (made on first use, so a
process that never touches a sandbox never probes bubblewrap), per-sandbox creation locks, and
the HTTP client of the preview proxy. The database row (models/sandbox.py) says which sandbox
belongs to which project and whether it is active; the backend keeps its files under the row id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
import weakref
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet

from runplane.clock import now
from runplane.config import Settings
from runplane.errors import NotFound
from runplane.models import Project, Sandbox
from runplane.models.choices import SandboxStatus
from runplane.periodic import Periodic
from runplane.sandboxes import netns
from runplane.sandboxes.egress import EgressGuard, EgressStatus, GuardedSandboxBackend, egress_policy
from runplane.sandboxes.errors import SandboxConflictError, SandboxNotFoundError
from runplane.sandboxes.limits import SandboxLimits
from runplane.sandboxes.local import workspaces_base
from runplane.sandboxes.sandbox import SandboxHandle
from runplane.sandboxes.upstream import SandboxTransport

log = logging.getLogger("runplane.sandboxes")

# Another process may be half-way through creating the same workspace: wait this long for it.
CREATE_RETRIES, CREATE_RETRY_DELAY = 100, 0.05
# Workspaces without a row (their project was deleted) are removed once this old.
ORPHAN_AGE_SECONDS = 300


def sandbox_limits(settings: Settings) -> SandboxLimits:
    return SandboxLimits(
        wall_time_seconds=settings.sandbox_command_timeout_seconds,
        cpu_seconds=settings.sandbox_cpu_seconds,
        memory_bytes=settings.sandbox_memory_bytes,
        sandbox_memory_bytes=settings.sandbox_total_memory_bytes,
        max_processes=settings.sandbox_max_processes,
        cpus=settings.sandbox_cpus,
        disk_bytes=settings.sandbox_disk_bytes,
        max_output_bytes=settings.sandbox_max_output_bytes,
        max_file_bytes=settings.sandbox_max_file_bytes,
        max_upload_bytes=settings.sandbox_max_upload_bytes,
        network=settings.sandbox_network,
        require_isolation=settings.sandbox_require_isolation,
        allow_unisolated=settings.sandbox_allow_unisolated,
        max_sessions=settings.sandbox_max_sessions,
    )


class SandboxManager:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._backend: GuardedSandboxBackend | None = None
        self.egress = EgressGuard(settings)  # keeps sandbox uids off this host's own services
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._stopped: set[str] = set()  # stopped here by the reaper and not woken since
        self._persisted: dict[str, float] = {}  # last activity written to the row, per sandbox
        self._http: httpx.AsyncClient | None = None
        if settings.sandbox_allow_unisolated:
            log.warning(
                "RUNPLANE_SANDBOX_ALLOW_UNISOLATED=true: if bubblewrap does not work here, sandbox commands run "
                "WITHOUT isolation and can read this server's files (data directory, database, secrets)"
            )

    @property
    def backend(self) -> GuardedSandboxBackend:
        if self._backend is None:
            base = workspaces_base(self.settings.data_dir, self.settings.sandbox_dir)
            uids = range(
                self.settings.sandbox_uid_start, self.settings.sandbox_uid_start + self.settings.sandbox_uid_count
            )
            self._backend = GuardedSandboxBackend(
                base,
                sandbox_limits(self.settings),
                uid_range=uids,
                guard=self.egress,
                network_namespaces=self.settings.sandbox_network_namespaces,
                egress=egress_policy(self.settings),
                bwrap=self.settings.sandbox_bwrap,
            )
        return self._backend

    async def guard_network(self) -> EgressStatus:
        """At start-up: install the egress guard and log whether it is active (else before the first command),
        and whether sandboxes will get network namespaces of their own."""
        if self.settings.sandbox_network_namespaces:
            reason = await asyncio.to_thread(netns.probe)
            if reason:
                log.warning("NO network namespace per sandbox: %s; sandboxes share this host's network", reason)
            else:
                log.info(
                    "sandboxes get a network namespace each (egress proxy %s)",
                    "on" if self.settings.sandbox_egress and self.settings.sandbox_network else "off",
                )
        return await self.egress.ensure()

    @property
    def http(self) -> httpx.AsyncClient:
        """The preview proxy's client: no redirects followed (the browser follows them), no env proxies."""
        if self._http is None:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(300, connect=10),
                follow_redirects=False,
                trust_env=False,
                transport=SandboxTransport(self.loaded, limits),  # connects inside the sandbox's namespace
            )
        return self._http

    async def open(self, sandbox_id: str) -> SandboxHandle:
        """The sandbox's handle, creating its workspace if it has none yet (safe to race)."""
        backend = self.backend
        if backend.exists(sandbox_id):
            return backend.get(sandbox_id)
        lock = self._locks.setdefault(sandbox_id, asyncio.Lock())
        async with lock:
            for _ in range(CREATE_RETRIES):
                if backend.exists(sandbox_id):
                    return backend.get(sandbox_id)
                try:
                    return await backend.create(sandbox_id)
                except SandboxConflictError:  # another process is creating it: wait for its sandbox.json
                    await asyncio.sleep(CREATE_RETRY_DELAY)
        raise SandboxConflictError(f"sandbox {sandbox_id} is left half-created; delete it and ensure it again")

    def loaded(self, sandbox_id: str) -> SandboxHandle | None:
        """The handle if the workspace exists on this machine, else None (never creates one)."""
        try:
            return self.backend.get(sandbox_id)
        except SandboxNotFoundError:
            return None

    def loaded_ids(self) -> list[str]:
        """Sandboxes this process has handles for (none before the backend was first used)."""
        return self._backend.idle_sandboxes(0.0) if self._backend is not None else []

    def is_stopped(self, sandbox_id: str) -> bool:
        return sandbox_id in self._stopped

    def activity_changed(self, sandbox: SandboxHandle) -> bool:
        """True (once) when the sandbox saw activity since the last call: time to write it to the row."""
        seen = sandbox.last_active_at.timestamp()
        if self._persisted.get(sandbox.id) == seen:
            return False
        self._persisted[sandbox.id] = seen
        return True

    def woke(self, sandbox_id: str) -> None:
        self._stopped.discard(sandbox_id)
        if (sandbox := self.loaded(sandbox_id)) is not None:
            sandbox.touch()

    async def stop(self, sandbox_id: str) -> None:
        """Stop every session and process of the sandbox and give its ports back; files stay."""
        self._stopped.add(sandbox_id)
        if (sandbox := self.loaded(sandbox_id)) is not None:
            await sandbox.stop_all()
            sandbox.release_ports()

    async def destroy(self, sandbox_id: str) -> None:
        self._stopped.discard(sandbox_id)
        self._persisted.pop(sandbox_id, None)
        if self.backend.exists(sandbox_id):
            await self.backend.destroy(sandbox_id)

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()
        if self._http is not None:
            await self._http.aclose()


# -- rows ------------------------------------------------------------------------------------
async def ensure_for_project(manager: SandboxManager, project: Project) -> Sandbox:
    """The project's sandbox row, created or woken; its workspace exists afterwards.

    Concurrent callers race on the UNIQUE project column: the losers read the winner's row."""
    row = await Sandbox.get_or_none(project_id=project.id)
    if row is None:
        try:
            row = await Sandbox.create(owner_id=project.owner_id, project_id=project.id, last_active_at=now())
        except IntegrityError:
            row = await Sandbox.get(project_id=project.id)
    await manager.open(str(row.id))
    return await wake(manager, row)


async def wake(manager: SandboxManager, row: Sandbox) -> Sandbox:
    """Mark the sandbox active again (after the idle reaper stopped it) and count this as activity."""
    manager.woke(str(row.id))
    if row.status != SandboxStatus.ACTIVE:
        await Sandbox.filter(id=row.id).update(status=SandboxStatus.ACTIVE, stopped_at=None, last_active_at=now())
        await row.refresh_from_db()
    return row


async def sandbox_for_project(manager: SandboxManager, project_id: uuid.UUID) -> SandboxHandle:
    """For the agent's tools: the project's sandbox, ready to run commands (the run is already authorized)."""
    project = await Project.get_or_none(id=project_id)
    if project is None:
        raise NotFound("Project not found")
    row = await ensure_for_project(manager, project)
    return await manager.open(str(row.id))


# -- idle reaping ----------------------------------------------------------------------------
async def reap_idle(manager: SandboxManager) -> list[str]:
    """One pass: stop sandboxes idle past the timeout; returns the ids stopped here.

    Sandboxes loaded in this process are judged by their in-memory activity (written to the row
    when it changed); rows nobody refreshed - their process is gone - are marked stopped too."""
    settings = manager.settings
    timeout = settings.sandbox_idle_timeout_seconds
    stopped: list[str] = []
    for sandbox_id in manager.loaded_ids():
        sandbox = manager.backend.get(sandbox_id)
        if sandbox.idle_seconds() >= timeout:
            if not manager.is_stopped(sandbox_id):
                await manager.stop(sandbox_id)
                await _mark_stopped(Sandbox.filter(id=sandbox_id))
                stopped.append(sandbox_id)
        elif manager.activity_changed(sandbox):
            await Sandbox.filter(id=sandbox_id, last_active_at__lt=sandbox.last_active_at).update(
                last_active_at=sandbox.last_active_at
            )
    # Rows whose activity nobody wrote for a whole timeout plus two sweeps: their process is gone.
    grace = timedelta(seconds=timeout + 2 * settings.sandbox_reaper_interval_seconds)
    await _mark_stopped(Sandbox.filter(last_active_at__lt=now() - grace))
    return stopped


async def _mark_stopped(rows: QuerySet[Sandbox]) -> None:
    await rows.filter(status=SandboxStatus.ACTIVE).update(status=SandboxStatus.STOPPED, stopped_at=now())


async def remove_orphans(manager: SandboxManager) -> list[str]:
    """Workspaces whose row is gone (the project was deleted) are destroyed, once old enough that
    no ensure could still be creating them."""
    if manager._backend is None and not (manager.settings.sandbox_dir or manager.settings.workspaces_dir).is_dir():
        return []  # no sandbox was ever made here
    base = manager.backend.base_dir
    candidates = [p.name for p in base.iterdir() if _is_uuid(p.name) and (p / "sandbox.json").is_file()]
    known = (
        {str(i) for i in await Sandbox.filter(id__in=candidates).values_list("id", flat=True)} if candidates else set()
    )
    removed = []
    for name in candidates:
        if name not in known and _age_seconds(base / name / "sandbox.json") > ORPHAN_AGE_SECONDS:
            await manager.destroy(name)
            removed.append(name)
    return removed


def _is_uuid(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def _age_seconds(meta: Path) -> float:
    try:
        created = datetime.fromisoformat(json.loads(meta.read_text())["created_at"])
    except (OSError, ValueError, KeyError):
        return 0.0
    return (now() - created).total_seconds()


class SandboxReaper(Periodic):
    """Runs reap_idle every sandbox_reaper_interval_seconds, and the orphan sweep every tenth pass."""

    def __init__(self, manager: SandboxManager) -> None:
        super().__init__("sandbox reaper", manager.settings.sandbox_reaper_interval_seconds, self._pass, log)
        self.manager = manager
        self._passes = 0

    async def _pass(self) -> None:
        started = time.monotonic()
        try:
            stopped = await reap_idle(self.manager)
            if self._passes % 10 == 0:
                await remove_orphans(self.manager)
        finally:
            self._passes += 1
        if stopped:
            log.info("stopped %d idle sandbox(es) in %.2fs", len(stopped), time.monotonic() - started)
