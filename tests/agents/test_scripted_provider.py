"""The offline scripted agent: tool calls from the prompt, a summary after the results."""

from __future__ import annotations

import time

from runplane.agents.providers import (
    ChatMessage,
    ContentDelta,
    Finished,
    ScriptedProvider,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
    UsageReport,
    collect,
)
from runplane.agents.providers.scripted import SCRIPTED_MODEL_ID

TOOLS = [ToolSpec(name, name) for name in ("shell", "write_file", "read_file", "list_files")]
TWO_BLOCKS = """Set up the project, please.

```sh
mkdir -p app && cd app
npm init -y
```

Then check it:

```bash
ls -la app
```

```python
print("not shell")
```
"""


def tool_result(call: ToolCall, content: str) -> ChatMessage:
    return ChatMessage("tool", content, tool_call_id=call.id)


async def test_two_shell_blocks_become_two_shell_calls() -> None:
    messages = [ChatMessage("system", "be helpful"), ChatMessage("user", TWO_BLOCKS)]

    reply = await collect(ScriptedProvider().stream_chat(messages, TOOLS, SCRIPTED_MODEL_ID))

    assert [(c.name, c.arguments) for c in reply.tool_calls] == [
        ("shell", {"command": "mkdir -p app && cd app\nnpm init -y"}),
        ("shell", {"command": "ls -la app"}),
    ]
    assert len({c.id for c in reply.tool_calls}) == 2
    assert reply.content == "I will run 2 shell commands."
    assert sum(isinstance(e, ContentDelta) for e in reply.events) > 1  # streamed in pieces
    assert isinstance(reply.events[-1], Finished) and reply.finish_reason == "tool_calls"


async def test_usage_is_the_documented_estimate() -> None:
    messages = [ChatMessage("system", "be helpful"), ChatMessage("user", TWO_BLOCKS)]

    reply = await collect(ScriptedProvider().stream_chat(messages, TOOLS, SCRIPTED_MODEL_ID))

    prompt = (len("be helpful") // 4 + 1) + (len(TWO_BLOCKS) // 4 + 1)
    output = reply.content + "".join(c.raw_arguments for c in reply.tool_calls)
    completion = len(output) // 4 + 1
    assert reply.usage == Usage(prompt, completion, prompt + completion)


async def test_final_answer_after_tool_results_summarizes_exit_codes() -> None:
    provider = ScriptedProvider()
    messages = [ChatMessage("user", TWO_BLOCKS)]
    first = await collect(provider.stream_chat(messages, TOOLS, SCRIPTED_MODEL_ID))
    setup, check = first.tool_calls
    messages += [
        first.as_message(),
        tool_result(setup, '{"exit_code": 0, "stdout": "Wrote to package.json"}'),
        tool_result(check, "ls: cannot access 'app': No such file\nexit code: 2"),
    ]

    final = await collect(provider.stream_chat(messages, TOOLS, SCRIPTED_MODEL_ID))

    assert final.tool_calls == [] and final.finish_reason == "stop"
    assert "`mkdir -p app && cd app` exited with code 0" in final.content
    assert "`ls -la app` exited with code 2" in final.content
    assert "1 step(s) failed." in final.content
    assert [type(e) for e in final.events[-2:]] == [UsageReport, Finished]


async def test_file_directives_become_file_tool_calls() -> None:
    prompt = (
        "write file notes/todo.txt:\n\n```\nbuy milk\nwalk dog\n```\n"
        "read file notes/todo.txt\nlist files notes\nlist files\n"
    )

    reply = await collect(ScriptedProvider().stream_chat([ChatMessage("user", prompt)], TOOLS, SCRIPTED_MODEL_ID))

    assert [(c.name, c.arguments) for c in reply.tool_calls] == [
        ("write_file", {"path": "notes/todo.txt", "content": "buy milk\nwalk dog\n"}),
        ("read_file", {"path": "notes/todo.txt"}),
        ("list_files", {"path": "notes"}),
        ("list_files", {"path": "."}),
    ]


async def test_only_the_last_user_message_is_acted_on() -> None:
    messages = [
        ChatMessage("user", "```sh\nrm -rf build\n```"),
        ChatMessage("assistant", "Done."),
        ChatMessage("user", "```\necho again\n```\n```\njust some prose\n```"),
    ]

    reply = await collect(ScriptedProvider().stream_chat(messages, TOOLS, SCRIPTED_MODEL_ID))

    assert [c.arguments for c in reply.tool_calls] == [{"command": "echo again"}]


async def test_console_transcripts_run_only_prompted_lines() -> None:
    prompt = "```console\n$ python --version\nPython 3.11.7\n$ pwd\n/work\n```"

    reply = await collect(ScriptedProvider().stream_chat([ChatMessage("user", prompt)], TOOLS, SCRIPTED_MODEL_ID))

    assert [c.arguments for c in reply.tool_calls] == [{"command": "python --version\npwd"}]


async def test_tools_not_offered_are_not_requested() -> None:
    prompt = "```sh\necho hi\n```\nread file a.txt"

    reply = await collect(
        ScriptedProvider().stream_chat([ChatMessage("user", prompt)], [ToolSpec("read_file", "")], SCRIPTED_MODEL_ID)
    )

    assert [c.name for c in reply.tool_calls] == ["read_file"]
    assert "not available" in reply.content


async def test_plain_message_gets_a_plain_answer() -> None:
    reply = await collect(
        ScriptedProvider().stream_chat([ChatMessage("user", "hello there")], TOOLS, SCRIPTED_MODEL_ID)
    )

    assert reply.tool_calls == [] and reply.finish_reason == "stop"
    assert "```sh" in reply.content


async def test_chunk_delay_spreads_the_stream_over_time() -> None:
    provider = ScriptedProvider(chunk_delay=0.02)
    started = time.monotonic()
    stamps: list[float] = []

    async for event in provider.stream_chat([ChatMessage("user", "hi")], TOOLS, "m"):
        if isinstance(event, ContentDelta):
            stamps.append(time.monotonic() - started)

    assert len(stamps) > 3 and stamps[-1] - stamps[0] >= 0.02 * (len(stamps) - 2)


async def test_tool_call_requests_come_after_content() -> None:
    reply = await collect(
        ScriptedProvider().stream_chat([ChatMessage("user", "```sh\ntrue\n```")], TOOLS, SCRIPTED_MODEL_ID)
    )

    kinds = [type(e) for e in reply.events]
    assert kinds.index(ToolCallRequest) > max(i for i, k in enumerate(kinds) if k is ContentDelta)


async def test_lists_one_free_model() -> None:
    (model,) = await ScriptedProvider().list_models()

    assert (model.id, model.provider) == (SCRIPTED_MODEL_ID, "scripted")
    assert model.pricing == {"prompt": "0", "completion": "0"}
