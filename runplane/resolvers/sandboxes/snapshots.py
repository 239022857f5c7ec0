"""Snapshots of a sandbox's workspace: create, list, diff, restore, delete."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from runplane.clock import now
from runplane.errors import NotFound
from runplane.resolvers.context import RequestContext
from runplane.resolvers.sandboxes.lifecycle import open_sandbox
from runplane.resolvers.validation import RawId, clean_text
from runplane.sandboxes import (
    SandboxHandle,
    SandboxLimitError,
    SnapshotInfo,
)

MAX_SNAPSHOT_DESCRIPTION = 1000


async def list_snapshots(ctx: RequestContext, *, sandbox_id: RawId) -> list[SnapshotInfo]:
    _, sandbox = await open_sandbox(ctx, sandbox_id)
    return await sandbox.list_snapshots()


async def create_snapshot(ctx: RequestContext, *, sandbox_id: RawId, description: str | None = None) -> SnapshotInfo:
    text = clean_text(description, "description", max_length=MAX_SNAPSHOT_DESCRIPTION, required=False)
    _, sandbox = await open_sandbox(ctx, sandbox_id, write=True)
    return await sandbox.create_snapshot(_new_snapshot_id(), text)


def _new_snapshot_id() -> str:
    return f"snap-{now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"


async def get_snapshot(ctx: RequestContext, *, sandbox_id: RawId, snapshot_id: RawId) -> SnapshotInfo:
    for info in await list_snapshots(ctx, sandbox_id=sandbox_id):
        if info.id == snapshot_id:
            return info
    raise NotFound("Snapshot not found")


@dataclass(frozen=True)
class Restored:
    snapshot: SnapshotInfo
    checkpoint: SnapshotInfo | None  # the state before the restore, kept as a snapshot of its own


async def restore_snapshot(
    ctx: RequestContext, *, sandbox_id: RawId, snapshot_id: RawId, checkpoint: bool = True
) -> Restored:
    """Replace the workspace with the snapshot's files; the current files are snapshotted first
    ("restore checkpoint") unless asked not to or the snapshot limit is reached."""
    _, sandbox = await open_sandbox(ctx, sandbox_id, write=True)
    sid = _snapshot_id(snapshot_id)
    await _require_snapshot(sandbox, sid)
    saved = None
    if checkpoint:
        try:
            saved = await sandbox.create_snapshot(_new_snapshot_id(), "restore checkpoint")
        except SandboxLimitError:
            saved = None
    return Restored(await sandbox.restore_snapshot(sid), saved)


async def diff_snapshot(ctx: RequestContext, *, sandbox_id: RawId, snapshot_id: RawId) -> str:
    """Unified diff from the snapshot (a/) to the current files (b/)."""
    _, sandbox = await open_sandbox(ctx, sandbox_id)
    return await sandbox.diff_snapshot(_snapshot_id(snapshot_id))


async def delete_snapshot(ctx: RequestContext, *, sandbox_id: RawId, snapshot_id: RawId) -> str:
    _, sandbox = await open_sandbox(ctx, sandbox_id, write=True)
    sid = _snapshot_id(snapshot_id)
    await sandbox.delete_snapshot(sid)
    return sid


def _snapshot_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise NotFound("Snapshot not found")
    return value


async def _require_snapshot(sandbox: SandboxHandle, sid: str) -> None:
    if not any(s.id == sid for s in await sandbox.list_snapshots()):
        raise NotFound("Snapshot not found")
