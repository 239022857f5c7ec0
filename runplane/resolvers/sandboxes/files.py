"""Files of a sandbox: list, tree, read, upload, write, delete, archive (paths checked by `user_path`)."""

from __future__ import annotations

import asyncio
import mimetypes
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from runplane.auth.abilities import SANDBOX_EXEC
from runplane.errors import InvalidInput, NotFound, PayloadTooLarge
from runplane.resolvers.context import RequestContext
from runplane.resolvers.sandboxes.lifecycle import open_sandbox, owned_sandbox, project_sandbox
from runplane.resolvers.validation import RawId
from runplane.sandboxes import (
    ArchiveFormat,
    FileInfo,
    FileTree,
    resolve_in_workspace,
)
from runplane.sandboxes.archive import ARCHIVE_FORMATS
from runplane.sandboxes.paths import MAX_PATH_BYTES

MAX_UPLOAD_FILES = 1000
MAX_DELETE_PATHS = 1000
MAX_TREE_ENTRIES = 10_000
MAX_PATH = MAX_PATH_BYTES  # in bytes: a path of more characters is always longer
WORKSPACE_PREFIX = "/workspace"  # the path commands see: accepted as the root in user paths too


def user_path(value: object, field: str = "path", *, default: str | None = ".") -> str:
    """A workspace path as users write it: relative, or absolute under /workspace (what commands see)."""
    if value is None or value == "":
        if default is None:
            raise InvalidInput(f"{field} is required", field=field)
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    if value == WORKSPACE_PREFIX or value.startswith(WORKSPACE_PREFIX + "/"):
        return value[len(WORKSPACE_PREFIX) :].lstrip("/") or "."
    return value


async def list_files(ctx: RequestContext, *, sandbox_id: RawId, path: str | None = None) -> list[FileInfo]:
    _, sandbox = await open_sandbox(ctx, sandbox_id)
    return await sandbox.list_files(user_path(path))


async def file_tree(
    ctx: RequestContext, *, sandbox_id: RawId, path: str | None = None, max_entries: int = MAX_TREE_ENTRIES
) -> FileTree:
    _, sandbox = await open_sandbox(ctx, sandbox_id)
    return await sandbox.tree(user_path(path), max_entries=max_entries)


async def _project_sandbox_id(ctx: RequestContext, project_id: RawId) -> uuid.UUID:
    row = await project_sandbox(ctx, project_id=project_id)
    if row is None:
        raise NotFound("This project has no sandbox yet")
    return row.id


async def list_project_files(ctx: RequestContext, *, project_id: RawId, path: str | None = None) -> list[FileInfo]:
    """The files of the project's sandbox (Cheatcode's `/project/{id}/git/files`)."""
    return await list_files(ctx, sandbox_id=await _project_sandbox_id(ctx, project_id), path=path)


async def read_project_file(ctx: RequestContext, *, project_id: RawId, path: str) -> FileContent:
    return await read_file(ctx, sandbox_id=await _project_sandbox_id(ctx, project_id), path=path)


@dataclass(frozen=True)
class FileContent:
    path: str
    data: bytes
    content_type: str

    @property
    def is_text(self) -> bool:
        return self.content_type.startswith("text/") or "charset=utf-8" in self.content_type


async def read_file(ctx: RequestContext, *, sandbox_id: RawId, path: str) -> FileContent:
    _, sandbox = await open_sandbox(ctx, sandbox_id)
    clean = user_path(path, default=None)
    data = await sandbox.read_file(clean)
    return FileContent(clean, data, guess_content_type(clean, data))


def guess_content_type(path: str, data: bytes) -> str:
    guessed, _ = mimetypes.guess_type(path, strict=False)
    text = _is_utf8_text(data)
    if guessed is None:
        return "text/plain; charset=utf-8" if text else "application/octet-stream"
    if text and (
        guessed.startswith("text/") or guessed in ("application/json", "application/javascript", "image/svg+xml")
    ):
        return f"{guessed}; charset=utf-8"
    return guessed


def _is_utf8_text(data: bytes) -> bool:
    if b"\0" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


FilePairs = Sequence[tuple[object, bytes]]  # (path as sent, content); paths are checked here


async def upload_files(
    ctx: RequestContext,
    *,
    sandbox_id: RawId,
    files: FilePairs | Callable[[int], Awaitable[FilePairs]],
) -> list[FileInfo]:
    """Write several files; every path is checked before the first one is written. `files` may be a
    reader called with the size limit once the caller is known to own the sandbox (a request body)."""
    _, sandbox = await open_sandbox(ctx, sandbox_id, write=True)
    limit = sandbox.limits.max_upload_bytes
    if callable(files):
        files = await files(limit)
    if not files:
        raise InvalidInput("No files were sent (multipart `file` parts)", field="file")
    if len(files) > MAX_UPLOAD_FILES:
        raise InvalidInput(f"At most {MAX_UPLOAD_FILES} files per upload", field="file")
    if sum(len(data) for _, data in files) > limit:
        raise PayloadTooLarge(f"Upload exceeds {limit} bytes")
    paths = [user_path(p, default=None) for p, _ in files]
    for path in paths:
        await asyncio.to_thread(resolve_in_workspace, sandbox.workspace, path)
    await sandbox.check_disk_quota(sum(len(data) for _, data in files))  # all or none, not the first few
    return [await sandbox.write_file(path, data) for path, (_, data) in zip(paths, files, strict=True)]


async def write_file(ctx: RequestContext, *, sandbox_id: RawId, path: str, data: bytes) -> FileInfo:
    (info,) = await upload_files(ctx, sandbox_id=sandbox_id, files=[(path, data)])
    return info


async def write_text_file(ctx: RequestContext, *, sandbox_id: RawId, path: str, content: str) -> FileInfo:
    await owned_sandbox(ctx, sandbox_id, ability=SANDBOX_EXEC)  # another user's sandbox: 404 before the body's 422
    if not isinstance(content, str):
        raise InvalidInput("content must be a string", field="content")
    return await write_file(ctx, sandbox_id=sandbox_id, path=path, data=content.encode())


async def delete_files(ctx: RequestContext, *, sandbox_id: RawId, paths: Sequence[str]) -> list[str]:
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise InvalidInput("paths must be a non-empty list of strings", field="paths")
    if len(paths) > MAX_DELETE_PATHS:
        raise InvalidInput(f"At most {MAX_DELETE_PATHS} paths at once", field="paths")
    _, sandbox = await open_sandbox(ctx, sandbox_id, write=True)
    return await sandbox.delete([user_path(p, default=None) for p in paths])


async def archive(
    ctx: RequestContext, *, sandbox_id: RawId, fmt: ArchiveFormat = "tar.gz"
) -> AsyncGenerator[bytes, None]:
    """The workspace as tar.gz or zip, streamed; checked here, before a response starts."""
    if fmt not in ARCHIVE_FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(ARCHIVE_FORMATS)}", field="format")
    _, sandbox = await open_sandbox(ctx, sandbox_id)
    return sandbox.archive(fmt)
