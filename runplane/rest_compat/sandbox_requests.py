"""Request models of the sandbox routes (runplane/rest_compat/sandboxes.py), bounded by the resolvers' limits.

The resolvers keep the checks GraphQL shares (paths inside the workspace, a non-blank command, session names,
ports that cannot be chosen); these models are the wire's types and bounds, and what the document shows."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from runplane.resolvers import sandboxes as ops
from runplane.rest_compat.bodies import ASCII_DIGITS, Body, Query, TokenQuery, text
from runplane.sandboxes import ArchiveFormat

WorkspacePath = Annotated[str, Field(max_length=ops.MAX_PATH)]
OutputOffset = Annotated[int, Field(ge=0, lt=ops.MAX_OUTPUT_OFFSET), ASCII_DIGITS]


def workspace_path(*, required: bool = False, description: str | None = None) -> Any:
    return text(ops.MAX_PATH, min_length=1 if required else 0, required=required, description=description)


# -- bodies ----------------------------------------------------------------------------------------------
class Upload(Body):
    """multipart/form-data: `file` parts paired in order with `path` fields (a path ending in "/" is a directory
    for the file's own name; without a path, the file name is used)."""

    file: list[Any] = Field(
        default_factory=list,
        json_schema_extra={"items": {"type": "string", "format": "binary"}, "maxItems": ops.MAX_UPLOAD_FILES},
    )
    path: list[WorkspacePath] = Field(default_factory=list, max_length=ops.MAX_UPLOAD_FILES)


class TextFile(Body):
    path: str = workspace_path(required=True)
    content: str


class DeleteFiles(Body):
    paths: list[WorkspacePath] = Field(min_length=1, max_length=ops.MAX_DELETE_PATHS)


class Execute(Body):
    command: str = text(ops.MAX_COMMAND, min_length=1, required=True)
    cwd: str | None = workspace_path(description="Default: the workspace")
    timeout: float | None = Field(None, gt=0, le=ops.MAX_TIMEOUT_SECONDS, description="Seconds")
    blocking: bool = True
    session_name: str | None = text(ops.MAX_SESSION_NAME)
    env: dict[str, str] | None = Field(None, max_length=ops.MAX_ENV_VARS)
    dev_server: bool = Field(False, description="A session with a port of its own, in its environment as PORT")
    port: bool | Literal["auto"] | None = Field(
        None, description='true or "auto": as dev_server (ports are handed out, never chosen)'
    )


class SnapshotCreate(Body):
    description: str | None = text(ops.MAX_SNAPSHOT_DESCRIPTION)


class SnapshotRestore(Body):
    checkpoint: bool = Field(True, description="Keep the current files as a snapshot first")


# -- query parameters --------------------------------------------------------------------------------------
class PathQuery(Query):
    path: str | None = workspace_path(description="Default: the workspace")


class TreeQuery(PathQuery):
    max_entries: Annotated[int, Field(ge=1, le=ops.MAX_TREE_ENTRIES), ASCII_DIGITS] = ops.MAX_TREE_ENTRIES


class FileQuery(Query):
    path: str = workspace_path(required=True)


class ProjectFileQuery(Query):
    file_path: str = workspace_path(required=True)


class DeleteQuery(Query):
    """`?path=a&path=b`: instead of the JSON body. (Each path's own bound is the resolver's, not documented here: a
    URL of a thousand paths at their longest is one no HTTP server reads.)"""

    path: list[str] | None = Field(None, max_length=ops.MAX_DELETE_PATHS)


class ArchiveQuery(TokenQuery):
    format: ArchiveFormat = "tar.gz"


class OutputQuery(Query):
    after: OutputOffset = 0


class StreamQuery(TokenQuery):
    from_offset: OutputOffset | None = Field(None, description="Resume after this output offset (or Last-Event-ID)")


class DevServerStreamQuery(StreamQuery):
    session_name: str | None = text(ops.MAX_SESSION_NAME, description="Default: the newest session with a port")


class PreviewQuery(Query):
    session_name: str | None = text(ops.MAX_SESSION_NAME, description="Default: the newest session with a port")
    port: Annotated[int, Field(ge=1, le=ops.MAX_PORT), ASCII_DIGITS] | None = Field(
        None, description="Where the dev server listens (default: the session's PORT, else 3000 web / 8081 Expo)"
    )
