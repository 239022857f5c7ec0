"""Project sandboxes on GraphQL: files, commands and sessions, previews, snapshots, and sessionOutput."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from runplane import models
from runplane import sandboxes as backend
from runplane.errors import InvalidInput
from runplane.resolvers import sandboxes as ops
from runplane.resolvers.validation import RawId
from runplane.schema.common import Node
from runplane.schema.context import context, rctx
from runplane.schema.enums import SandboxStatus, SessionStatus
from runplane.schema.errors import ConflictError, ForbiddenError, InputError, NotFoundError, typed_errors
from runplane.schema.ids import from_global_id, to_global_id


@strawberry.type
class SandboxFile:
    name: str
    path: str
    is_dir: bool
    size: float  # bytes; Float because files can pass 2^31
    modified_at: datetime
    is_symlink: bool

    @classmethod
    def of(cls, info: backend.FileInfo) -> "SandboxFile":
        return cls(
            name=info.name,
            path=info.path,
            is_dir=info.is_dir,
            size=info.size,
            modified_at=info.modified_at,
            is_symlink=info.is_symlink,
        )


@strawberry.type
class FileContent:
    path: str
    size: int
    content_type: str
    encoding: str = strawberry.field(description='"utf-8" for text, "base64" for anything else.')
    content: str

    @classmethod
    def of(cls, found: ops.FileContent) -> "FileContent":
        text = found.is_text
        content = found.data.decode("utf-8") if text else base64.b64encode(found.data).decode()
        return cls(
            path=found.path,
            size=len(found.data),
            content_type=found.content_type,
            encoding="utf-8" if text else "base64",
            content=content,
        )


@strawberry.type
class SandboxSession:
    name: str
    status: SessionStatus
    exit_code: int | None
    command: str
    port: int | None
    started_at: datetime
    completed_at: datetime | None
    output_tail: str
    output_offset: int

    @classmethod
    def of(cls, s: backend.SessionInfo) -> "SandboxSession":
        return cls(
            name=s.name,
            status=SessionStatus(s.status),
            exit_code=s.exit_code,
            command=s.command,
            port=s.port,
            started_at=s.started_at,
            completed_at=s.completed_at,
            output_tail=s.output_tail,
            output_offset=s.output_offset,
        )

    # Deployed clients still select the old name; it answers until they have moved to completedAt.
    @strawberry.field(deprecation_reason="Use completedAt")
    def finished_at(self) -> datetime | None:
        return self.completed_at


@strawberry.type
class CommandResult:
    output: str
    exit_code: int
    truncated: bool
    timed_out: bool
    duration_ms: float
    output_bytes: int


@strawberry.type
class Snapshot:
    id: str
    description: str
    created_at: datetime
    size_bytes: float  # Float: GraphQL Int stops at 2^31

    @classmethod
    def of(cls, s: backend.SnapshotInfo) -> "Snapshot":
        return cls(id=s.id, description=s.description, created_at=s.created_at, size_bytes=s.size_bytes)


@strawberry.type
class PreviewUrl:
    url: str
    port: int
    session_name: str
    expires_at: datetime


def _base_url(info: strawberry.Info) -> str:
    request = context(info).request
    return str(request.base_url) if request is not None else ""


async def _preview(
    info: strawberry.Info, sandbox_id: RawId, session_name: str | None, expo: bool, port: int | None = None
) -> PreviewUrl:
    link = await ops.preview_link(
        rctx(info),
        sandbox_id=sandbox_id,
        base_url=_base_url(info),
        session_name=session_name,
        kind="expo" if expo else "web",
        port=port,
    )
    return PreviewUrl(url=link.url, port=link.port, session_name=link.session_name, expires_at=link.expires_at)


@strawberry.type
class Sandbox(Node):
    project_id: strawberry.ID
    status: SandboxStatus
    created_at: datetime
    last_active_at: datetime
    stopped_at: datetime | None
    _row: strawberry.Private[models.Sandbox]

    @classmethod
    def from_row(cls, row: models.Sandbox) -> "Sandbox":
        return cls(
            id=to_global_id("Sandbox", row.id),
            project_id=to_global_id("Project", row.project_id),
            status=SandboxStatus(row.status),
            created_at=row.created_at,
            last_active_at=row.last_active_at,
            stopped_at=row.stopped_at,
            _row=row,
        )

    @strawberry.field
    async def files(self, info: strawberry.Info, path: str = ".") -> list[SandboxFile]:
        return [SandboxFile.of(f) for f in await ops.list_files(rctx(info), sandbox_id=self._row.id, path=path)]

    @strawberry.field(description="The tree below `path`, breadth first, as nested JSON.")
    async def file_tree(self, info: strawberry.Info, path: str = ".", max_entries: int = ops.MAX_TREE_ENTRIES) -> JSON:
        entries = max(1, min(max_entries, ops.MAX_TREE_ENTRIES))
        tree = await ops.file_tree(rctx(info), sandbox_id=self._row.id, path=path, max_entries=entries)
        return JSON({"root": _tree(tree.root), "entries": tree.entries, "truncated": tree.truncated})

    @strawberry.field
    async def file_content(self, info: strawberry.Info, path: str) -> FileContent:
        return FileContent.of(await ops.read_file(rctx(info), sandbox_id=self._row.id, path=path))

    @strawberry.field
    async def sessions(self, info: strawberry.Info) -> list[SandboxSession]:
        return [SandboxSession.of(s) for s in await ops.list_sessions(rctx(info), sandbox_id=self._row.id)]

    @strawberry.field
    async def session(self, info: strawberry.Info, name: str) -> SandboxSession:
        return SandboxSession.of(await ops.session_status(rctx(info), sandbox_id=self._row.id, name=name))

    @strawberry.field
    async def snapshots(self, info: strawberry.Info) -> list[Snapshot]:
        return [Snapshot.of(s) for s in await ops.list_snapshots(rctx(info), sandbox_id=self._row.id)]

    @strawberry.field(description="Unified diff from the snapshot to the current files.")
    async def diff_snapshot(self, info: strawberry.Info, snapshot_id: str) -> str:
        return await ops.diff_snapshot(rctx(info), sandbox_id=self._row.id, snapshot_id=snapshot_id)

    @strawberry.field(
        description="A proxied URL of the dev server: `port` where it listens inside the sandbox, else the "
        "session's PORT (the newest session with one unless named), else 3000 (8081 with expo)."
    )
    async def preview_url(
        self, info: strawberry.Info, session_name: str | None = None, expo: bool = False, port: int | None = None
    ) -> PreviewUrl:
        return await _preview(info, self._row.id, session_name, expo, port)


def _tree(node: backend.TreeNode) -> dict[str, object]:
    out: dict[str, object] = {"name": node.name, "path": node.path, "isDir": node.is_dir, "size": node.size}
    if node.is_dir:
        out["children"] = [_tree(child) for child in node.children]
    return out


@strawberry.type
class SessionOutputChunk:
    offset: int
    next_offset: int
    data: str
    done: bool = strawberry.field(description="The session ended: status and exitCode are final.")
    status: SessionStatus | None = None
    exit_code: int | None = None


@strawberry.type
class SandboxPayload:
    sandbox: Sandbox


@strawberry.type
class DeleteSandboxPayload:
    deleted_id: strawberry.ID


@strawberry.type
class ExecutePayload:
    result: CommandResult | None = strawberry.field(description="The output of a blocking command.")
    session: SandboxSession | None = strawberry.field(description="The session a non-blocking command runs in.")


@strawberry.type
class FilesPayload:
    files: list[SandboxFile]


@strawberry.type
class DeleteFilesPayload:
    deleted: list[str]


@strawberry.type
class SessionPayload:
    session: SandboxSession


@strawberry.type
class SnapshotPayload:
    snapshot: Snapshot


@strawberry.type
class RestoreSnapshotPayload:
    snapshot: Snapshot
    checkpoint: Snapshot | None


@strawberry.type
class DeleteSnapshotPayload:
    deleted_id: str


EnsureSandboxResult = Annotated[
    SandboxPayload | InputError | NotFoundError | ConflictError | ForbiddenError,
    strawberry.union("EnsureSandboxResult"),
]
DeleteSandboxResult = Annotated[
    DeleteSandboxPayload | NotFoundError | ForbiddenError, strawberry.union("DeleteSandboxResult")
]
ExecuteCommandResult = Annotated[
    ExecutePayload | InputError | NotFoundError | ConflictError | ForbiddenError,
    strawberry.union("ExecuteCommandResult"),
]
WriteFilesResult = Annotated[
    FilesPayload | InputError | NotFoundError | ForbiddenError, strawberry.union("WriteFilesResult")
]
DeleteFilesResult = Annotated[
    DeleteFilesPayload | InputError | NotFoundError | ForbiddenError, strawberry.union("DeleteFilesResult")
]
SessionResult = Annotated[
    SessionPayload | InputError | NotFoundError | ForbiddenError, strawberry.union("SessionResult")
]
SnapshotResult = Annotated[
    SnapshotPayload | InputError | NotFoundError | ConflictError | ForbiddenError, strawberry.union("SnapshotResult")
]
RestoreSnapshotResult = Annotated[
    RestoreSnapshotPayload | InputError | NotFoundError | ForbiddenError, strawberry.union("RestoreSnapshotResult")
]
DeleteSnapshotResult = Annotated[
    DeleteSnapshotPayload | NotFoundError | ForbiddenError, strawberry.union("DeleteSnapshotResult")
]


@strawberry.input
class ExecuteCommandInput:
    sandbox_id: strawberry.ID
    command: str
    cwd: str | None = None
    timeout: float | None = None
    blocking: bool = True
    session_name: str | None = None
    env: JSON | None = None
    dev_server: bool = False


@strawberry.input
class WriteFileInput:
    path: str
    content: str
    base64: bool = strawberry.field(default=False, description="content is base64 (binary files)")


def _sid(value: strawberry.ID) -> uuid.UUID:
    return from_global_id(value, "Sandbox")


@strawberry.type
class SandboxQueries:
    @strawberry.field
    async def sandbox(self, info: strawberry.Info, id: strawberry.ID) -> Sandbox | None:
        return Sandbox.from_row(await ops.owned_sandbox(rctx(info), _sid(id)))

    @strawberry.field(description="The project's sandbox, if it has one (ensureSandbox makes it).")
    async def project_sandbox(self, info: strawberry.Info, project_id: strawberry.ID) -> Sandbox | None:
        row = await ops.project_sandbox(rctx(info), project_id=from_global_id(project_id, "Project"))
        return Sandbox.from_row(row) if row is not None else None

    @strawberry.field
    async def session_status(
        self, info: strawberry.Info, sandbox_id: strawberry.ID, session_name: str
    ) -> SandboxSession | None:
        return SandboxSession.of(await ops.session_status(rctx(info), sandbox_id=_sid(sandbox_id), name=session_name))

    @strawberry.field(
        description="A proxied, token-signed URL of a dev server (expo: an exp:// URL for Expo Go); `port` where "
        "it listens inside the sandbox, else the session's PORT, else 3000 (8081 with expo)."
    )
    async def preview_url(
        self,
        info: strawberry.Info,
        sandbox_id: strawberry.ID,
        session_name: str | None = None,
        expo: bool = False,
        port: int | None = None,
    ) -> PreviewUrl | None:
        return await _preview(info, _sid(sandbox_id), session_name, expo, port)

    @strawberry.field(description="Unified diff from the snapshot to the current files.")
    async def diff_snapshot(self, info: strawberry.Info, sandbox_id: strawberry.ID, snapshot_id: str) -> str | None:
        return await ops.diff_snapshot(rctx(info), sandbox_id=_sid(sandbox_id), snapshot_id=snapshot_id)


@strawberry.type
class SandboxMutations:
    @strawberry.mutation(description="Create or wake the project's sandbox (one per project).")
    @typed_errors
    async def ensure_sandbox(self, info: strawberry.Info, project_id: strawberry.ID) -> EnsureSandboxResult:
        row = await ops.ensure_sandbox(rctx(info), project_id=from_global_id(project_id, "Project"))
        return SandboxPayload(sandbox=Sandbox.from_row(row))

    @strawberry.mutation(description="Stop the sandbox and remove it with its files.")
    @typed_errors
    async def delete_sandbox(self, info: strawberry.Info, id: strawberry.ID) -> DeleteSandboxResult:
        deleted = await ops.delete_sandbox(rctx(info), sandbox_id=_sid(id))
        return DeleteSandboxPayload(deleted_id=to_global_id("Sandbox", deleted))

    @strawberry.mutation(
        description="Run a command: blocking returns its output; otherwise it runs in a named session."
    )
    @typed_errors
    async def execute_command(self, info: strawberry.Info, input: ExecuteCommandInput) -> ExecuteCommandResult:
        done = await ops.execute(
            rctx(info),
            sandbox_id=_sid(input.sandbox_id),
            command=input.command,
            cwd=input.cwd,
            timeout=input.timeout,
            blocking=input.blocking,
            session_name=input.session_name,
            env=input.env,
            dev_server=input.dev_server,
        )
        result = done.result
        return ExecutePayload(
            result=CommandResult(
                output=result.output,
                exit_code=result.exit_code,
                truncated=result.truncated,
                timed_out=result.timed_out,
                duration_ms=result.duration_ms,
                output_bytes=result.output_bytes,
            )
            if result
            else None,
            session=SandboxSession.of(done.session) if done.session else None,
        )

    @strawberry.mutation
    @typed_errors
    async def write_files(
        self, info: strawberry.Info, sandbox_id: strawberry.ID, files: list[WriteFileInput]
    ) -> WriteFilesResult:
        pairs = [(f.path, _decode(f)) for f in files]
        written = await ops.upload_files(rctx(info), sandbox_id=_sid(sandbox_id), files=pairs)
        return FilesPayload(files=[SandboxFile.of(w) for w in written])

    @strawberry.mutation
    @typed_errors
    async def delete_files(
        self, info: strawberry.Info, sandbox_id: strawberry.ID, paths: list[str]
    ) -> DeleteFilesResult:
        return DeleteFilesPayload(deleted=await ops.delete_files(rctx(info), sandbox_id=_sid(sandbox_id), paths=paths))

    @strawberry.mutation
    @typed_errors
    async def stop_session(self, info: strawberry.Info, sandbox_id: strawberry.ID, session_name: str) -> SessionResult:
        status = await ops.stop_session(rctx(info), sandbox_id=_sid(sandbox_id), name=session_name)
        return SessionPayload(session=SandboxSession.of(status))

    @strawberry.mutation
    @typed_errors
    async def create_snapshot(
        self, info: strawberry.Info, sandbox_id: strawberry.ID, description: str | None = None
    ) -> SnapshotResult:
        return SnapshotPayload(
            snapshot=Snapshot.of(
                await ops.create_snapshot(rctx(info), sandbox_id=_sid(sandbox_id), description=description)
            )
        )

    @strawberry.mutation(
        description="Replace the files with the snapshot's; the current ones are kept as a checkpoint snapshot."
    )
    @typed_errors
    async def restore_snapshot(
        self, info: strawberry.Info, sandbox_id: strawberry.ID, snapshot_id: str, checkpoint: bool = True
    ) -> RestoreSnapshotResult:
        done = await ops.restore_snapshot(
            rctx(info), sandbox_id=_sid(sandbox_id), snapshot_id=snapshot_id, checkpoint=checkpoint
        )
        return RestoreSnapshotPayload(
            snapshot=Snapshot.of(done.snapshot), checkpoint=Snapshot.of(done.checkpoint) if done.checkpoint else None
        )

    @strawberry.mutation
    @typed_errors
    async def delete_snapshot(
        self, info: strawberry.Info, sandbox_id: strawberry.ID, snapshot_id: str
    ) -> DeleteSnapshotResult:
        return DeleteSnapshotPayload(
            deleted_id=await ops.delete_snapshot(rctx(info), sandbox_id=_sid(sandbox_id), snapshot_id=snapshot_id)
        )


def _decode(item: WriteFileInput) -> bytes:
    if not item.base64:
        return item.content.encode()
    try:
        return base64.b64decode(item.content, validate=True)
    except ValueError:
        raise InvalidInput(f"content of {item.path} is not valid base64", field="content") from None


@strawberry.type
class SandboxSubscriptions:
    @strawberry.subscription(description="A session's output from fromOffset on, live; the last chunk has done: true.")
    async def session_output(
        self, info: strawberry.Info, sandbox_id: strawberry.ID, session_name: str, from_offset: int = 0
    ) -> AsyncGenerator[SessionOutputChunk, None]:
        stream = await ops.open_session_stream(
            rctx(info), sandbox_id=_sid(sandbox_id), name=session_name, from_offset=from_offset
        )
        async for item in ops.follow_session(stream, heartbeat=3600.0):
            if item.kind == "output" and item.chunk is not None:
                yield SessionOutputChunk(
                    offset=item.chunk.offset, next_offset=item.chunk.next_offset, data=item.chunk.text(), done=False
                )
            elif item.kind == "exit" and item.status is not None:
                end = item.status.output_offset
                yield SessionOutputChunk(
                    offset=end,
                    next_offset=end,
                    data="",
                    done=True,
                    status=SessionStatus(item.status.status),
                    exit_code=item.status.exit_code,
                )
