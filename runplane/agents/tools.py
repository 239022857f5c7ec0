"""The agent's tools, run against the project's sandbox: shell, read_file, write_file, list_files."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from runplane.agents.providers.base import ToolCall, ToolSpec
from runplane.auth.abilities import PROJECTS_READ, SANDBOX_EXEC, USER_ABILITIES
from runplane.errors import DomainError
from runplane.sandboxes import SandboxHandle

MAX_RESULT_CHARS = 16_000  # what the model sees of a tool's output; the sandbox caps what is kept

TOOL_SPECS = [
    ToolSpec(
        "shell",
        "Run a shell command in the project workspace.",
        {
            "type": "object",
            "required": ["command"],
            "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
        },
    ),
    ToolSpec(
        "read_file",
        "Read a text file of the workspace.",
        {
            "type": "object",
            "required": ["path"],
            "properties": {"path": {"type": "string"}},
        },
    ),
    ToolSpec(
        "write_file",
        "Write (create or replace) a file of the workspace.",
        {
            "type": "object",
            "required": ["path", "content"],
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        },
    ),
    ToolSpec(
        "list_files",
        "List the files of a workspace directory.",
        {
            "type": "object",
            "properties": {"path": {"type": "string"}},
        },
    ),
]


# The ability each tool needs: the same as the REST/GraphQL route that does the same thing (/execute and file
# writes need sandbox:exec, reading files projects:read). A run's tools are bounded by its starter's token.
TOOL_ABILITIES = {
    "shell": SANDBOX_EXEC,
    "write_file": SANDBOX_EXEC,
    "read_file": PROJECTS_READ,
    "list_files": PROJECTS_READ,
}


def allowed_tools(abilities: list[str] | None) -> frozenset[str]:
    """Tools a run may use. None: a run from before runs recorded their abilities (every user ability)."""
    held = USER_ABILITIES if abilities is None else frozenset(abilities)
    return frozenset(tool for tool, ability in TOOL_ABILITIES.items() if ability in held)


class CommandRecorder(Protocol):
    async def __call__(
        self, *, command: str, exit_code: int | None, duration_ms: int, output_bytes: int, timed_out: bool
    ) -> None: ...


@dataclass
class ToolOutcome:
    result: str
    ok: bool
    extra: dict[str, Any]


class ToolRunner:
    """Executes one tool call; every failure becomes a result the model can read, never an exception."""

    def __init__(
        self,
        open_sandbox: Callable[[], Awaitable[SandboxHandle]],
        record_command: CommandRecorder,
        allowed: frozenset[str] = frozenset(TOOL_ABILITIES),
    ) -> None:
        self._open_sandbox = open_sandbox
        self._sandbox: SandboxHandle | None = None
        self.record_command = record_command
        self.allowed = allowed

    async def sandbox(self) -> SandboxHandle:
        """Opened on the first tool call: a run that only talks needs no sandbox."""
        if self._sandbox is None:
            self._sandbox = await self._open_sandbox()
        return self._sandbox

    async def run(self, call: ToolCall) -> ToolOutcome:
        handler = getattr(self, f"_tool_{call.name}", None)
        if handler is None:
            return ToolOutcome(f"unknown tool {call.name!r}", False, {})
        # Every tool is offered (a refusal the model reads, and the run's events show, says why), but only
        # those the starter's token allows run: a prompt cannot widen what its token may do.
        if call.name not in self.allowed:
            ability = TOOL_ABILITIES[call.name]
            refusal = f"refused: the token that started this run lacks the {ability!r} ability that {call.name} needs"
            return ToolOutcome(refusal, False, {"refused": True, "ability": ability})
        try:
            outcome: ToolOutcome = await handler(call.arguments)
            return outcome
        except DomainError as exc:
            if exc.status >= 500:  # the sandbox itself is broken (not the model's doing): the run fails
                raise
            return ToolOutcome(f"error: {exc.message}", False, {})  # bad path, missing file, size limit...
        except (ValueError, OSError, LookupError, TypeError) as exc:
            return ToolOutcome(f"error: {exc}", False, {})

    async def _tool_shell(self, args: dict[str, Any]) -> ToolOutcome:
        command = _string(args, "command")
        timeout = args.get("timeout") if isinstance(args.get("timeout"), (int, float)) else None
        result = await (await self.sandbox()).execute(command, timeout=timeout)
        await self.record_command(
            command=command,
            exit_code=result.exit_code,
            duration_ms=int(result.duration_ms),
            output_bytes=result.output_bytes,
            timed_out=result.timed_out,
        )
        text = result.output[-MAX_RESULT_CHARS:]
        if result.timed_out:
            text += "\n[timed out]"
        if result.truncated:
            text += "\n[output truncated]"
        text += f"\n[exit code {result.exit_code}]"  # the model only sees this text: it must know the outcome
        return ToolOutcome(
            text, result.exit_code == 0, {"exit_code": result.exit_code, "duration_ms": int(result.duration_ms)}
        )

    async def _tool_read_file(self, args: dict[str, Any]) -> ToolOutcome:
        data = await (await self.sandbox()).read_file(_string(args, "path"))
        return ToolOutcome(data.decode("utf-8", errors="replace")[:MAX_RESULT_CHARS], True, {})

    async def _tool_write_file(self, args: dict[str, Any]) -> ToolOutcome:
        path, content = _string(args, "path"), _string(args, "content")
        await (await self.sandbox()).write_file(path, content.encode())
        return ToolOutcome(f"wrote {len(content.encode())} bytes to {path}", True, {})

    async def _tool_list_files(self, args: dict[str, Any]) -> ToolOutcome:
        given = args.get("path")
        path = given if isinstance(given, str) else "."
        entries = await (await self.sandbox()).list_files(path)
        listing = [f"{e.path}{'/' if e.is_dir else ''}" for e in entries]
        return ToolOutcome(json.dumps(listing)[:MAX_RESULT_CHARS], True, {})


def _string(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise ValueError(f"argument {key!r} must be a string")
    return value


def new_message_id() -> str:
    return uuid.uuid4().hex
