"""Sandbox routes of Cheatcode's documented API (README "REST compatibility API"), plus sessions, snapshots
and a run's commands.

Session and dev-server streams are SSE: `data:` JSON frames with `type` output/ready/exit, `id:` the
output offset (Last-Event-ID or `?from_offset=` resumes), `: ping` heartbeats."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from runplane.clock import iso
from runplane.config import Settings
from runplane.errors import BadRequest, InvalidInput, PayloadTooLarge
from runplane.models import RunCommand, Sandbox
from runplane.resolvers import agent_runs as run_ops
from runplane.resolvers import sandboxes as ops
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.bodies import parse_body, parse_query, validated
from runplane.rest_compat.common import ok
from runplane.rest_compat.registry import api
from runplane.rest_compat.sandbox_requests import (
    ArchiveQuery,
    DeleteFiles,
    DeleteQuery,
    DevServerStreamQuery,
    Execute,
    FileQuery,
    OutputQuery,
    PathQuery,
    PreviewQuery,
    ProjectFileQuery,
    SnapshotCreate,
    SnapshotRestore,
    StreamQuery,
    TextFile,
    TreeQuery,
    Upload,
)
from runplane.rest_compat.schemas import BOOL, INT, NULLABLE_STR, STR, STR_LIST, TIME, UUID, obj, sse_event
from runplane.rest_compat.sse import PING, RETRY
from runplane.sandboxes import CommandResult, FileInfo, SessionInfo, SnapshotInfo, TreeNode

TAG = "sandbox"
UPLOAD_PATH = re.compile(r"^/api/(sandboxes/[^/]+/files|agent/initiate)/?$")  # multipart files
MULTIPART_OVERHEAD = 256 * 1024  # part headers and boundaries of up to MAX_UPLOAD_FILES files

# -- OpenAPI schemas ------------------------------------------------------------------------------------
SANDBOX = obj(
    ["sandbox_id", "status", "project_id"],
    sandbox_id=UUID,
    id=UUID,
    project_id=UUID,
    status=STR,
    created_at=TIME,
    last_active_at=TIME,
    stopped_at=NULLABLE_STR,
    isolated=BOOL,
    workspace=STR,
)
FILE = obj(
    ["name", "path", "is_dir", "size"], name=STR, path=STR, is_dir=BOOL, size=INT, modified_at=TIME, is_symlink=BOOL
)
FILE_LIST = obj(["path", "files"], path=STR, files={"type": "array", "items": FILE})
WEB_TREE_NODE = {
    "type": "object",
    "required": ["name", "path", "fullPath", "type"],
    "properties": {
        "name": STR,
        "path": STR,
        "fullPath": STR,
        "type": {"type": "string", "enum": ["file", "directory"]},
        "children": {"type": "array", "items": {"type": "object", "description": "nodes of the same shape"}},
    },
}
TREE = obj(
    ["root", "entries", "truncated", "tree", "totalFiles", "basePath"],
    root={"type": "object"},
    entries=INT,
    truncated=BOOL,
    tree={"type": "array", "items": WEB_TREE_NODE},
    totalFiles=INT,
    basePath=STR,
)
DELETED = obj(["deleted"], deleted=STR_LIST)
SESSION = obj(
    ["session_name", "status"],
    session_name=STR,
    status=STR,
    exit_code={"type": ["integer", "null"]},
    command=STR,
    port={"type": ["integer", "null"]},
    started_at=TIME,
    completed_at=NULLABLE_STR,
    output=STR,
    output_offset=INT,
)
EXECUTED = obj(
    [],
    output=STR,
    exit_code=INT,
    truncated=BOOL,
    timed_out=BOOL,
    duration_ms={"type": "number"},
    session_name=NULLABLE_STR,
    status=STR,
    port={"type": ["integer", "null"]},
)
OUTPUT = obj(["offset", "next_offset", "output"], offset=INT, next_offset=INT, output=STR, status=STR)
PREVIEW = obj(
    ["url", "status"],
    url=STR,
    preview_url=STR,
    expo_url=STR,
    status={"type": "string", "enum": ["available"]},
    port=INT,
    session_name=STR,
    expires_at=TIME,
)
SNAPSHOT = obj(
    ["snapshot_id", "description", "created_at"],
    snapshot_id=STR,
    id=STR,
    description=STR,
    created_at=TIME,
    size_bytes=INT,
)
DIFF = obj(["snapshot_id", "diff"], snapshot_id=STR, diff=STR)
COMMAND = obj(
    ["command", "exit_code"],
    id=UUID,
    command=STR,
    exit_code={"type": ["integer", "null"]},
    duration_ms=INT,
    output_bytes=INT,
    timed_out=BOOL,
    created_at=TIME,
)
STREAM = sse_event(
    "SSE: `data:` {type: output|ready|exit}; `id:` output offset (Last-Event-ID resumes); `: ping` every 15 s",
    obj(["type"], type=STR),
)


def body_limit(settings: Settings, path: str) -> int:
    """Request-body cap for BodyLimitMiddleware: uploads may be as large as the sandbox upload limit."""
    if UPLOAD_PATH.match(path):
        return max(settings.max_body_bytes, settings.sandbox_max_upload_bytes + MULTIPART_OVERHEAD)
    return settings.max_body_bytes


# -- shapes ----------------------------------------------------------------------------------------------
def sandbox_json(row: Sandbox, isolated: bool | None = None) -> dict[str, Any]:
    return {
        "sandbox_id": str(row.id),
        "id": str(row.id),
        "project_id": str(row.project_id),
        "status": row.status,
        "created_at": iso(row.created_at),
        "last_active_at": iso(row.last_active_at),
        "stopped_at": iso(row.stopped_at),
        "workspace": ops.WORKSPACE_PREFIX,
        **({"isolated": isolated} if isolated is not None else {}),
    }


def file_json(info: FileInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "path": info.path,
        "is_dir": info.is_dir,
        "size": info.size,
        "modified_at": iso(info.modified_at),
        "mod_time": iso(info.modified_at),  # the original's name (lib/api/types.ts FileInfo)
        "is_symlink": info.is_symlink,
    }


# Left out of the web app's tree, as the original did (generated or vendored, and large).
TREE_SKIPPED = frozenset({"node_modules", ".git", ".next", "dist", "build", ".cache", "__pycache__", ".turbo"})


def web_tree(root: TreeNode) -> tuple[list[dict[str, Any]], int]:
    """The tree as Cheatcode's code tab reads it (lib/api/types.ts FileTreeNode): `path` relative to the requested
    directory, `fullPath` as commands see it, `type` file|directory; and how many files it holds."""
    base = root.path.strip(".").strip("/")
    count = 0

    def convert(node: TreeNode) -> dict[str, Any]:
        nonlocal count
        relative = node.path[len(base) :].lstrip("/") if base else node.path
        out: dict[str, Any] = {
            "name": node.name,
            "path": relative,
            "fullPath": f"{ops.WORKSPACE_PREFIX}/{node.path}",
            "type": "directory" if node.is_dir else "file",
        }
        if node.is_dir:
            out["children"] = [convert(c) for c in node.children if c.name not in TREE_SKIPPED]
        else:
            count += 1
        return out

    tree = [convert(c) for c in root.children if c.name not in TREE_SKIPPED]
    return tree, count


def tree_json(node: TreeNode) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": node.name,
        "path": node.path,
        "is_dir": node.is_dir,
        "size": node.size,
        "is_symlink": node.is_symlink,
    }
    if node.is_dir:
        out["children"] = [tree_json(child) for child in node.children]
    return out


def session_json(status: SessionInfo) -> dict[str, Any]:
    """runplane's session, and the original's view of it as a list of commands with their logs (the web app's
    dev-server hook reads `commands[].logs`); a runplane session runs one command."""
    command = {"command": status.command, "exit_code": status.exit_code, "logs": status.output_tail}
    return {
        "commands": [command],
        "total_commands": 1,
        "blocking": False,
        "session_name": status.name,
        "status": status.status,
        "exit_code": status.exit_code,
        "command": status.command,
        "port": status.port,
        "started_at": iso(status.started_at),
        "completed_at": iso(status.completed_at),
        "output": status.output_tail,
        "output_offset": status.output_offset,
    }


def result_json(result: CommandResult) -> dict[str, Any]:
    return {
        "output": result.output,
        "exit_code": result.exit_code,
        "success": result.exit_code == 0 and not result.timed_out,
        "blocking": True,
        "truncated": result.truncated,
        "timed_out": result.timed_out,
        "duration_ms": result.duration_ms,
        "output_bytes": result.output_bytes,
        "session_name": None,
        "status": "completed",
    }


def snapshot_json(info: SnapshotInfo) -> dict[str, Any]:
    return {
        "snapshot_id": info.id,
        "id": info.id,
        "description": info.description,
        "created_at": iso(info.created_at),
        "size_bytes": info.size_bytes,
    }


def command_json(row: RunCommand) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "command": row.command,
        "exit_code": row.exit_code,
        "duration_ms": row.duration_ms,
        "output_bytes": row.output_bytes,
        "timed_out": row.timed_out,
        "created_at": iso(row.created_at),
    }


def _sid(request: Request) -> str:
    return str(request.path_params["sandbox_id"])


# -- lifecycle -------------------------------------------------------------------------------------------
@api.add(
    "POST",
    "/project/{project_id}/sandbox/ensure-active",
    "Ensure a sandbox is running for the project",
    tag=TAG,
    response=SANDBOX,
)
async def ensure_active(request: Request, ctx: RequestContext) -> Response:
    row = await ops.ensure_sandbox(ctx, project_id=request.path_params["project_id"])
    return ok(sandbox_json(row, await ops.isolated(ctx)))


@api.add("GET", "/sandboxes/{sandbox_id}", "Get a sandbox", tag=TAG, response=SANDBOX)
async def get_sandbox(request: Request, ctx: RequestContext) -> Response:
    return ok(sandbox_json(await ops.owned_sandbox(ctx, _sid(request))))


@api.add(
    "DELETE",
    "/sandboxes/{sandbox_id}",
    "Delete a sandbox and its files",
    tag=TAG,
    response=obj(["deleted", "sandbox_id"], deleted=BOOL, sandbox_id=UUID),
)
async def delete_sandbox(request: Request, ctx: RequestContext) -> Response:
    deleted = await ops.delete_sandbox(ctx, sandbox_id=_sid(request))
    return ok({"deleted": True, "sandbox_id": str(deleted)})


# -- files -----------------------------------------------------------------------------------------------
@api.add(
    "POST",
    "/sandboxes/{sandbox_id}/files",
    "Upload files to the sandbox (multipart: `file` parts, each with a `path` field)",
    tag=TAG,
    body=Upload,
    content_type="multipart/form-data",
    response=obj(["files"], files={"type": "array", "items": FILE}),
)
async def upload(request: Request, ctx: RequestContext) -> Response:

    async def read(limit: int) -> list[tuple[object, bytes]]:  # called once the sandbox is known to be the caller's
        return await _multipart_files(request, limit)

    written = await ops.upload_files(ctx, sandbox_id=_sid(request), files=read)
    return ok({"files": [file_json(f) for f in written]})


async def _multipart_files(request: Request, limit: int) -> list[tuple[object, bytes]]:
    """`file` parts paired in order with `path` fields (rest_compat/sandbox_requests.py Upload)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("Send the files as multipart/form-data `file` parts")
    try:
        form = await request.form(max_files=ops.MAX_UPLOAD_FILES, max_fields=2 * ops.MAX_UPLOAD_FILES)
    except HTTPException as exc:
        raise BadRequest(f"Malformed multipart body: {exc.detail}") from None
    try:
        return await _paired_files(form, limit)
    finally:
        await form.close()  # its spooled files, on a refusal too


async def _paired_files(form: FormData, limit: int) -> list[tuple[object, bytes]]:
    uploads = [u for u in form.getlist("file") + form.getlist("files") if isinstance(u, UploadFile)]
    paths = validated(Upload, {"path": [p for p in form.getlist("path") if isinstance(p, str)]}, strict=False).path
    pairs: list[tuple[object, bytes]] = []
    total = 0
    for index, upload in enumerate(uploads):
        total += upload.size or 0
        if total > limit:
            raise PayloadTooLarge(f"Upload exceeds {limit} bytes")
        path = paths[index] if index < len(paths) else ""
        if path == "" or path.endswith("/"):
            path += upload.filename or ""
        pairs.append((path, await upload.read()))
    return pairs


@api.add(
    "POST",
    "/sandboxes/{sandbox_id}/files/json",
    "Write one text file (JSON {path, content})",
    tag=TAG,
    body=TextFile,
    response=obj(["files"], files={"type": "array", "items": FILE}),
)
async def write_json_file(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, TextFile)
    info = await ops.write_text_file(ctx, sandbox_id=_sid(request), path=body.path, content=body.content)
    return ok({"files": [file_json(info)], "status": "success", "created": True, "path": info.path})


@api.add(
    "GET", "/sandboxes/{sandbox_id}/files", "List files in the sandbox", tag=TAG, response=FILE_LIST, query=[PathQuery]
)
async def list_files(request: Request, ctx: RequestContext) -> Response:
    path = parse_query(request, PathQuery).path or "."
    files = await ops.list_files(ctx, sandbox_id=_sid(request), path=path)
    return ok({"path": path, "files": [file_json(f) for f in files]})


@api.add(
    "GET",
    "/sandboxes/{sandbox_id}/files/tree",
    "Get the file tree",
    tag=TAG,
    response=TREE,
    query=[TreeQuery],
)
async def file_tree(request: Request, ctx: RequestContext) -> Response:
    query = parse_query(request, TreeQuery)
    tree = await ops.file_tree(ctx, sandbox_id=_sid(request), path=query.path, max_entries=query.max_entries)
    nodes, files = web_tree(tree.root)
    base = ops.WORKSPACE_PREFIX + ("/" + tree.root.path if tree.root.path not in ("", ".") else "")
    return ok(
        {
            "root": tree_json(tree.root),
            "entries": tree.entries,
            "truncated": tree.truncated,
            "tree": nodes,
            "totalFiles": files,
            "basePath": base,
        }
    )


@api.add(
    "GET",
    "/sandboxes/{sandbox_id}/files/content",
    "Get file content (use ?path=): the bytes, with a guessed content type",
    tag=TAG,
    query=[FileQuery],
)
async def file_content(request: Request, ctx: RequestContext) -> Response:
    content = await ops.read_file(ctx, sandbox_id=_sid(request), path=parse_query(request, FileQuery).path)
    # The bytes are the sandbox's, served from our origin: never sniffed, never run as a page of ours.
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox", "Cache-Control": "no-store"}
    return Response(content.data, media_type=content.content_type, headers=headers)


@api.add(
    "DELETE",
    "/sandboxes/{sandbox_id}/files",
    'Delete files (JSON {"paths": [...]} or ?path=)',
    tag=TAG,
    body=DeleteFiles,
    response=DELETED,
    query=[DeleteQuery],
)
async def delete_files(request: Request, ctx: RequestContext) -> Response:
    paths = validated(DeleteQuery, {"path": request.query_params.getlist("path") or None}).path
    if not paths:
        paths = (await parse_body(request, DeleteFiles)).paths
    deleted = await ops.delete_files(ctx, sandbox_id=_sid(request), paths=paths)
    return ok({"deleted": deleted})


@api.add(
    "GET",
    "/sandboxes/{sandbox_id}/download-archive",
    "Download the sandbox as an archive (streamed)",
    tag=TAG,
    query=[ArchiveQuery],
    query_token=True,
)
async def download_archive(request: Request, ctx: RequestContext) -> Response:
    fmt = parse_query(request, ArchiveQuery).format
    chunks = await ops.archive(ctx, sandbox_id=_sid(request), fmt=fmt)
    media = "application/gzip" if fmt == "tar.gz" else "application/zip"
    headers = {
        "Content-Disposition": f'attachment; filename="sandbox-{_sid(request)}.{fmt}"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(chunks, media_type=media, headers=headers)


# -- commands and sessions ---------------------------------------------------------------------------------
@api.add(
    "POST",
    "/sandboxes/{sandbox_id}/execute",
    "Execute a shell command (blocking, or in a named session)",
    tag=TAG,
    body=Execute,
    response=EXECUTED,
)
async def execute(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, Execute)
    done = await ops.execute(
        ctx,
        sandbox_id=_sid(request),
        command=body.command,
        cwd=body.cwd,
        timeout=body.timeout,
        blocking=body.blocking,
        session_name=body.session_name,
        env=body.env,
        dev_server=body.dev_server,
        port=body.port,
    )
    if done.result is not None:
        return ok(result_json(done.result))
    assert done.session is not None
    return ok(session_json(done.session), status=200)


@api.add(
    "GET",
    "/sandboxes/{sandbox_id}/sessions",
    "List the sandbox's sessions",
    tag=TAG,
    response=obj(["sessions"], sessions={"type": "array", "items": SESSION}),
)
async def list_sessions(request: Request, ctx: RequestContext) -> Response:
    return ok({"sessions": [session_json(s) for s in await ops.list_sessions(ctx, sandbox_id=_sid(request))]})


@api.add(
    "GET", "/sandboxes/{sandbox_id}/sessions/{session_name}/status", "Get session status", tag=TAG, response=SESSION
)
async def session_status(request: Request, ctx: RequestContext) -> Response:
    status = await ops.session_status(ctx, sandbox_id=_sid(request), name=request.path_params["session_name"])
    return ok(session_json(status))


@api.add(
    "GET",
    "/sandboxes/{sandbox_id}/sessions/{session_name}/output",
    "Poll a session's output after an offset",
    tag=TAG,
    response=OUTPUT,
    query=[OutputQuery],
)
async def session_output(request: Request, ctx: RequestContext) -> Response:
    name = request.path_params["session_name"]
    after = parse_query(request, OutputQuery).after
    chunk = await ops.session_output(ctx, sandbox_id=_sid(request), name=name, after_offset=after)
    status = await ops.session_status(ctx, sandbox_id=_sid(request), name=name)
    return ok(
        {
            "offset": chunk.offset,
            "next_offset": chunk.next_offset,
            "output": chunk.text(),
            "status": status.status,
            "exit_code": status.exit_code,
        }
    )


@api.add("POST", "/sandboxes/{sandbox_id}/sessions/{session_name}/stop", "Stop a session", tag=TAG, response=SESSION)
async def stop_session(request: Request, ctx: RequestContext) -> Response:
    status = await ops.stop_session(ctx, sandbox_id=_sid(request), name=request.path_params["session_name"])
    return ok(session_json(status))


@api.add(
    "GET",
    "/sandboxes/{sandbox_id}/sessions/{session_name}/stream",
    "Stream a session's output via SSE",
    tag=TAG,
    response=STREAM,
    query=[StreamQuery],
    query_token=True,
)
async def session_stream(request: Request, ctx: RequestContext) -> Response:
    offset = _resume_offset(request, parse_query(request, StreamQuery))
    stream = await ops.open_session_stream(
        ctx, sandbox_id=_sid(request), name=request.path_params["session_name"], from_offset=offset
    )
    return _sse(stream, ctx.settings.sse_heartbeat_seconds, None)


@api.add(
    "GET",
    "/sandboxes/{sandbox_id}/dev-server/stream",
    "Stream dev server output via SSE (a `ready` event once it answers)",
    tag=TAG,
    response=STREAM,
    query=[DevServerStreamQuery],
    query_token=True,
)
async def dev_server_stream(request: Request, ctx: RequestContext) -> Response:
    query = parse_query(request, DevServerStreamQuery)
    stream = await ops.open_session_stream(
        ctx,
        sandbox_id=_sid(request),
        name=query.session_name,
        from_offset=_resume_offset(request, query),
        dev_server=True,
    )
    base = str(request.base_url)

    async def preview_url() -> str | None:
        try:
            return (
                await ops.preview_link(ctx, sandbox_id=stream.sandbox_id, base_url=base, session_name=stream.name)
            ).url
        except (ops.PreviewUnavailable, InvalidInput):
            return None

    return _sse(stream, ctx.settings.sse_heartbeat_seconds, preview_url)


def _resume_offset(request: Request, query: StreamQuery) -> str | int:
    """Last-Event-ID (an EventSource reconnecting) before `?from_offset=`; the resolver reads the header's text."""
    return request.headers.get("last-event-id") or query.from_offset or 0


def _sse(stream: ops.SessionStream, heartbeat: float, preview_url: Any) -> StreamingResponse:
    """Dev-server streams (`preview_url` given) also carry the frames Cheatcode's web app reads
    (components/thread/hooks/use-dev-server.ts connectSSE): `{"type": "status", "status": starting|running|stopped}`
    and `{"type": "preview_url", "url"}`. That hook splits the body on blank lines and parses blocks that start
    with `data: ` whole, so those frames are `data:` lines alone; output frames keep their `id:` (resume)."""

    async def body() -> AsyncIterator[bytes]:
        yield RETRY
        if preview_url is not None:
            yield _plain_frame({"type": "status", "status": "starting", "session_name": stream.name})
        async with aclosing(ops.follow_session(stream, heartbeat=heartbeat)) as items:
            async for item in items:
                if item.kind == "ping":
                    yield PING
                    continue
                frame = _frame(item)
                if item.kind == "ready" and preview_url is not None:
                    frame["preview_url"] = await preview_url()
                event_id = f"id: {item.chunk.next_offset}\n" if item.chunk is not None else ""
                yield f"{event_id}data: {json.dumps(frame, separators=(',', ':'))}\n\n".encode()
                if preview_url is not None:
                    yield b"".join(_plain_frame(f) for f in _web_app_frames(item, frame))

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


def _web_app_frames(item: ops.StreamItem, frame: dict[str, Any]) -> list[dict[str, Any]]:
    if item.kind == "ready":
        url = frame.get("preview_url")
        return [{"type": "status", "status": "running"}, *([{"type": "preview_url", "url": url}] if url else [])]
    if item.kind == "exit":
        return [{"type": "status", "status": "stopped", "exit_code": frame.get("exit_code")}]
    return []


def _plain_frame(frame: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(frame, separators=(',', ':'))}\n\n".encode()


def _frame(item: ops.StreamItem) -> dict[str, Any]:
    if (chunk := item.chunk) is not None:  # an output item, the only kind carrying a chunk
        return {"type": "output", "content": chunk.text(), "offset": chunk.offset, "next_offset": chunk.next_offset}
    status = item.status
    frame: dict[str, Any] = {
        "type": item.kind,
        "session_name": status.name if status else None,
        "status": status.status if status else None,
        "exit_code": status.exit_code if status else None,
    }
    if item.readiness is not None:
        frame.update(
            url=item.readiness.url,
            via=item.readiness.via,
            line=item.readiness.line,
            port=status.port if status else None,
        )
    return frame


# -- previews ------------------------------------------------------------------------------------------------
@api.add(
    "GET",
    "/sandboxes/{sandbox_id}/preview-url",
    "Get the web preview URL (proxied, short-lived signed token)",
    tag=TAG,
    response=PREVIEW,
    query=[PreviewQuery],
)
async def preview_url(request: Request, ctx: RequestContext) -> Response:
    return await _preview(request, ctx, "web")


@api.add(
    "GET",
    "/sandboxes/{sandbox_id}/expo-url",
    "Get the Expo (mobile) preview URL",
    tag=TAG,
    response=PREVIEW,
    query=[PreviewQuery],
)
async def expo_url(request: Request, ctx: RequestContext) -> Response:
    return await _preview(request, ctx, "expo")


async def _preview(request: Request, ctx: RequestContext, kind: str) -> Response:
    query = parse_query(request, PreviewQuery)
    link = await ops.preview_link(
        ctx,
        sandbox_id=_sid(request),
        base_url=str(request.base_url),
        session_name=query.session_name,
        kind=kind,
        port=query.port,
    )
    original = "expo_url" if kind == "expo" else "preview_url"  # the web app's names (use-preview-url.ts ...)
    return ok(
        {
            "url": link.url,
            original: link.url,
            "status": "available",
            "port": link.port,
            "session_name": link.session_name,
            "expires_at": iso(link.expires_at),
        }
    )


# -- snapshots --------------------------------------------------------------------------------------------------
@api.add(
    "GET",
    "/sandboxes/{sandbox_id}/snapshots",
    "List the sandbox's snapshots",
    tag=TAG,
    response=obj(["snapshots"], snapshots={"type": "array", "items": SNAPSHOT}),
)
async def list_snapshots(request: Request, ctx: RequestContext) -> Response:
    return ok({"snapshots": [snapshot_json(s) for s in await ops.list_snapshots(ctx, sandbox_id=_sid(request))]})


@api.add(
    "POST",
    "/sandboxes/{sandbox_id}/snapshots",
    "Create a snapshot of the sandbox's files",
    tag=TAG,
    body=SnapshotCreate,
    response=SNAPSHOT,
    status=201,
)
async def create_snapshot(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, SnapshotCreate, required=False)
    info = await ops.create_snapshot(ctx, sandbox_id=_sid(request), description=body.description)
    return ok(snapshot_json(info), status=201)


@api.add("GET", "/sandboxes/{sandbox_id}/snapshots/{snapshot_id}", "Get a snapshot", tag=TAG, response=SNAPSHOT)
async def get_snapshot(request: Request, ctx: RequestContext) -> Response:
    return ok(
        snapshot_json(
            await ops.get_snapshot(ctx, sandbox_id=_sid(request), snapshot_id=request.path_params["snapshot_id"])
        )
    )


@api.add(
    "DELETE",
    "/sandboxes/{sandbox_id}/snapshots/{snapshot_id}",
    "Delete a snapshot",
    tag=TAG,
    response=obj(["deleted"], deleted=BOOL, snapshot_id=STR),
)
async def delete_snapshot(request: Request, ctx: RequestContext) -> Response:
    sid = await ops.delete_snapshot(ctx, sandbox_id=_sid(request), snapshot_id=request.path_params["snapshot_id"])
    return ok({"deleted": True, "snapshot_id": sid})


@api.add(
    "POST",
    "/sandboxes/{sandbox_id}/snapshots/{snapshot_id}/restore",
    "Restore a snapshot (the current files are kept as a checkpoint)",
    tag=TAG,
    body=SnapshotRestore,
    response=obj(["snapshot", "checkpoint"], snapshot=SNAPSHOT, checkpoint={"type": ["object", "null"]}),
)
async def restore_snapshot(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, SnapshotRestore, required=False)
    done = await ops.restore_snapshot(
        ctx, sandbox_id=_sid(request), snapshot_id=request.path_params["snapshot_id"], checkpoint=body.checkpoint
    )
    return ok(
        {
            "snapshot": snapshot_json(done.snapshot),
            "checkpoint": snapshot_json(done.checkpoint) if done.checkpoint else None,
        }
    )


@api.add(
    "GET",
    "/sandboxes/{sandbox_id}/snapshots/{snapshot_id}/diff",
    "Compare a snapshot with the current files (unified diff)",
    tag=TAG,
    response=DIFF,
)
async def diff_snapshot(request: Request, ctx: RequestContext) -> Response:
    sid = request.path_params["snapshot_id"]
    return ok({"snapshot_id": sid, "diff": await ops.diff_snapshot(ctx, sandbox_id=_sid(request), snapshot_id=sid)})


# -- a run's commands ----------------------------------------------------------------------------------------------
@api.add(
    "GET",
    "/agent-run/{agent_run_id}/commands",
    "Commands the agent ran in the project's sandbox during a run",
    tag="agent",
    response=obj(["commands"], commands={"type": "array", "items": COMMAND}),
)
async def run_commands(request: Request, ctx: RequestContext) -> Response:
    rows = await run_ops.list_commands(ctx, run_id=request.path_params["agent_run_id"])
    return ok({"commands": [command_json(r) for r in rows]})


# -- the project's files, as the web app's code view lists them --------------------------------------------------
@api.add(
    "GET",
    "/project/{project_id}/git/files",
    "List files of the project's sandbox (?path=)",
    tag=TAG,
    response=FILE_LIST,
    query=[PathQuery],
)
async def project_files(request: Request, ctx: RequestContext) -> Response:
    path = parse_query(request, PathQuery).path or "."
    files = await ops.list_project_files(ctx, project_id=request.path_params["project_id"], path=path)
    return ok({"path": path, "files": [file_json(f) for f in files]})


@api.add(
    "GET",
    "/project/{project_id}/git/file-content",
    "A text file of the project's sandbox (?file_path=), as JSON",
    tag=TAG,
    response=obj(["content", "path"], content=STR, path=STR, encoding=STR),
    query=[ProjectFileQuery],
)
async def project_file_content(request: Request, ctx: RequestContext) -> Response:
    path = parse_query(request, ProjectFileQuery).file_path
    content = await ops.read_project_file(ctx, project_id=request.path_params["project_id"], path=path)
    text = content.data.decode("utf-8", errors="replace")
    return ok({"content": text, "path": content.path, "encoding": "utf-8"})
