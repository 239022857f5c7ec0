"""An offline "model" that needs no network: the embedded default and the demo agent.

It reads the last user message and turns fenced shell blocks and a few plain-English
directives into tool calls, then summarizes the tool results. Deterministic, so runs, events
and billing can be exercised end to end without a key.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from .base import (
    ChatMessage,
    ContentDelta,
    Finished,
    ModelInfo,
    ProviderEvent,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
    UsageReport,
)

SCRIPTED_MODEL_ID = "runplane/scripted-agent"
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "zsh", "console", "shell-session"})
# First words that make an unlabelled ``` block look like a shell script.
SHELL_COMMANDS = frozenset(
    "ls cat echo printf python python3 pip pip3 uv npm npx node yarn pnpm git make pytest cd "
    "mkdir rm cp mv touch grep sed awk curl wget cargo go bash sh env export which pwd date "
    "sleep find head tail wc sort chmod docker true false test exit tree du df ps kill".split()
)
_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)\s*$")
_WRITE = re.compile(r"^\s*(?:[-*]\s+)?write\s+(?:the\s+)?file\s+(\S+?)\s*:\s*$", re.I)
_READ = re.compile(r"^\s*(?:[-*]\s+)?read\s+(?:the\s+)?file\s+(\S+)\s*$", re.I)
_LIST = re.compile(r"^\s*(?:[-*]\s+)?list\s+files(?:\s+(\S+))?\s*$", re.I)
_EXIT_CODE = re.compile(r"(?:exit[ _]?code|exit[ _]status|returncode)\W{0,3}(-?\d+)", re.I)


@dataclass(frozen=True, slots=True)
class Action:
    tool: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Block:
    language: str
    body: str


class ScriptedProvider:
    def __init__(self, *, chunk_delay: float = 0.0, name: str = "scripted") -> None:
        self.name = name
        self.chunk_delay = chunk_delay  # > 0 makes streams observable in demos and UIs

    async def list_models(self) -> list[ModelInfo]:
        pricing = {"prompt": "0", "completion": "0"}
        return [ModelInfo(SCRIPTED_MODEL_ID, "Scripted offline agent", self.name, None, pricing)]

    async def aclose(self) -> None:
        return None

    async def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        model: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncIterator[ProviderEvent]:
        text, calls = plan_reply(messages, tools)
        for chunk in split_chunks(text):
            yield ContentDelta(chunk)
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        for call in calls:
            yield ToolCallRequest(call)
        yield UsageReport(estimate_usage(messages, text, calls))
        yield Finished("tool_calls" if calls else "stop")


# ---- planning --------------------------------------------------------------------------------


def plan_reply(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> tuple[str, list[ToolCall]]:
    """Decide the next assistant turn: tool calls for a new request, a summary after results."""
    last_user = _last_index(messages, "user")
    if last_user is None:
        return "Hello! I am the offline scripted agent. Send me a message.", []
    later = messages[last_user + 1 :]
    if any(m.role == "tool" for m in later):
        return summarize_results(later), []
    actions = parse_actions(messages[last_user].content or "")
    offered = {t.name for t in tools}
    usable = [a for a in actions if a.tool in offered]
    calls = [_tool_call(f"call_{len(messages)}_{i}", a) for i, a in enumerate(usable)]
    return _intro(usable, len(actions) - len(usable)), calls


def _intro(actions: list[Action], unavailable: int) -> str:
    if not actions and not unavailable:
        return (
            "I am the offline scripted agent. Put commands in a ```sh block and I will run "
            "them; I also understand `write file <path>:`, `read file <path>` and "
            "`list files [path]`."
        )
    shell = sum(a.tool == "shell" for a in actions)
    parts = [f"{shell} shell command{'s' if shell != 1 else ''}"] if shell else []
    if len(actions) - shell:
        count = len(actions) - shell
        parts.append(f"{count} file action{'s' if count != 1 else ''}")
    text = f"I will run {' and '.join(parts)}." if parts else "I cannot act on this."
    if unavailable:
        text += f" {unavailable} request(s) need tools that are not available here."
    return text


def _tool_call(call_id: str, action: Action) -> ToolCall:
    return ToolCall(call_id, action.tool, action.arguments, json.dumps(action.arguments))


def _last_index(messages: Sequence[ChatMessage], role: str) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == role:
            return index
    return None


# ---- parsing the user's message --------------------------------------------------------------


def parse_actions(text: str) -> list[Action]:
    """Tool actions in the order they appear in the message."""
    actions: list[Action] = []
    lines = text.splitlines()
    pending_write: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        if _FENCE.match(line):
            block, index = _read_block(lines, index)
            action = _block_action(block, pending_write)
            actions.extend([action] if action else [])
            pending_write = None
            continue
        pending_write = _line_action(line, actions, pending_write)
        index += 1
    return actions


def _line_action(line: str, actions: list[Action], pending_write: str | None) -> str | None:
    """Handle a non-fence line; returns the path still waiting for its content block."""
    if match := _WRITE.match(line):
        return _clean_path(match.group(1))
    if match := _READ.match(line):
        actions.append(Action("read_file", {"path": _clean_path(match.group(1))}))
    elif match := _LIST.match(line):
        actions.append(Action("list_files", {"path": _clean_path(match.group(1) or ".")}))
    # Blank lines may sit between "write file x:" and its block; other text cancels it.
    return pending_write if not line.strip() else None


def _read_block(lines: list[str], start: int) -> tuple[_Block, int]:
    """Read a fenced block starting at `start`; an unclosed fence runs to the end."""
    opening = _FENCE.match(lines[start])
    assert opening is not None
    fence, language = opening.group(1), opening.group(2).lower()
    body: list[str] = []
    index = start + 1
    while index < len(lines) and lines[index].strip() != fence:
        body.append(lines[index])
        index += 1
    return _Block(language, "\n".join(body)), index + 1


def _block_action(block: _Block, pending_write: str | None) -> Action | None:
    if pending_write is not None:
        content = block.body + "\n" if block.body else ""
        return Action("write_file", {"path": pending_write, "content": content})
    command = shell_command(block)
    return Action("shell", {"command": command}) if command else None


def shell_command(block: _Block) -> str | None:
    """The command to run for a block, or None when it is not shell."""
    body = block.body.strip("\n")
    if not body.strip():
        return None
    prompted = [ln for ln in body.splitlines() if ln.lstrip().startswith("$ ")]
    if block.language == "console" or (prompted and not block.language):
        # Transcripts mix commands and their output; only "$ " lines are commands.
        return "\n".join(ln.lstrip()[2:] for ln in prompted) or None
    if block.language in SHELL_LANGUAGES:
        return body
    return body if not block.language and _looks_like_shell(body) else None


def _looks_like_shell(body: str) -> bool:
    first = next((ln.strip() for ln in body.splitlines() if ln.strip()), "")
    if first.startswith(("#!", "./")):
        return True
    return first.split()[0] in SHELL_COMMANDS if first else False


def _clean_path(path: str) -> str:
    return path.strip("`'\"")


# ---- after tool results ----------------------------------------------------------------------


def summarize_results(turn: Sequence[ChatMessage]) -> str:
    """One sentence per tool result, then a failure count."""
    calls = {c.id: c for m in turn for c in (m.tool_calls or [])}
    lines: list[str] = []
    failures = 0
    for message in (m for m in turn if m.role == "tool"):
        call = calls.get(message.tool_call_id or "")
        line, failed = _describe_result(call, message.content or "")
        lines.append(line)
        failures += failed
    verdict = "All steps succeeded." if not failures else f"{failures} step(s) failed."
    return "Done. " + " ".join(lines) + " " + verdict


def _describe_result(call: ToolCall | None, content: str) -> tuple[str, bool]:
    if call is None:
        return "A tool returned a result.", False
    if call.name == "shell":
        code = exit_code(content)
        shown = (str(call.arguments.get("command", "")).splitlines() or [""])[0][:80]
        status = f"exited with code {code}" if code is not None else "finished"
        return f"`{shown}` {status}.", bool(code)
    failed = _reports_error(content)
    target = call.arguments.get("path", "")
    return f"{call.name} {target}: {'failed' if failed else 'ok'}.", failed


def exit_code(content: str) -> int | None:
    """Find an exit code in a shell tool result, whether JSON or plain text."""
    data = _json_object(content)
    for key in ("exit_code", "exitCode", "returncode", "code"):
        if isinstance(data.get(key), int):
            return int(data[key])
    match = _EXIT_CODE.search(content)
    return int(match.group(1)) if match else None


def _reports_error(content: str) -> bool:
    data = _json_object(content)
    if data:
        return bool(data.get("error")) or data.get("ok") is False
    return content.lower().startswith("error")


def _json_object(content: str) -> dict[str, Any]:
    try:
        data = json.loads(content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# ---- streaming and accounting ----------------------------------------------------------------


def split_chunks(text: str) -> list[str]:
    """Word-sized chunks (each keeps its trailing space) so the reply streams like a model's."""
    return re.findall(r"\S+\s*|\s+", text)


def estimate_tokens(text: str) -> int:
    return len(text) // 4 + 1


def estimate_usage(messages: Sequence[ChatMessage], text: str, calls: Sequence[ToolCall]) -> Usage:
    prompt = sum(estimate_tokens(_message_text(m)) for m in messages)
    completion = estimate_tokens(text + "".join(c.raw_arguments for c in calls))
    return Usage(prompt, completion, prompt + completion)


def _message_text(message: ChatMessage) -> str:
    return (message.content or "") + "".join(c.raw_arguments for c in message.tool_calls or [])
