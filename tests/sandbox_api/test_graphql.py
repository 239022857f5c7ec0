"""The same operations over GraphQL, and the sessionOutput subscription over graphql-transport-ws."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.sandbox_api.serve import SandboxServer
from tests.support import UserHandle, gql

SANDBOX_FIELDS = "id projectId status createdAt lastActiveAt stoppedAt"


async def ensure(client: httpx.AsyncClient, user: UserHandle) -> dict[str, Any]:
    project = (
        await gql(
            client,
            'mutation { createProject(input: {name: "gql"}) { ... on ProjectPayload { project { id } } } }',
            user=user,
        )
    )["data"]["createProject"]["project"]
    result = await gql(
        client,
        f"mutation($p: ID!) {{ ensureSandbox(projectId: $p) {{ __typename ... on SandboxPayload "
        f"{{ sandbox {{ {SANDBOX_FIELDS} }} }} }} }}",
        {"p": project["id"]},
        user=user,
    )
    payload = result["data"]["ensureSandbox"]
    assert payload["__typename"] == "SandboxPayload", result
    sandbox: dict[str, Any] = payload["sandbox"]
    assert sandbox["projectId"] == project["id"] and sandbox["status"] == "active"
    return sandbox


EXECUTE = """mutation($input: ExecuteCommandInput!) { executeCommand(input: $input) { __typename
  ... on ExecutePayload { result { output exitCode timedOut truncated } session { name status port } }
  ... on UserError { code message } } }"""


async def test_files_commands_and_snapshots_over_graphql(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    sandbox = await ensure(client, alice)
    sid = sandbox["id"]
    written = await gql(
        client,
        """mutation($s: ID!, $f: [WriteFileInput!]!) { writeFiles(sandboxId: $s, files: $f) {
        __typename ... on FilesPayload { files { path size } } } }""",
        {
            "s": sid,
            "f": [
                {"path": "hello.txt", "content": "hello\n"},
                {"path": "bin/data", "content": base64.b64encode(b"\x00\xff").decode(), "base64": True},
            ],
        },
        user=alice,
    )
    assert [f["path"] for f in written["data"]["writeFiles"]["files"]] == ["hello.txt", "bin/data"]

    ran = await gql(client, EXECUTE, {"input": {"sandboxId": sid, "command": "cat hello.txt; exit 2"}}, user=alice)
    assert ran["data"]["executeCommand"]["result"] == {
        "output": "hello\n",
        "exitCode": 2,
        "timedOut": False,
        "truncated": False,
    }
    snap = await gql(
        client,
        'mutation($s: ID!) { createSnapshot(sandboxId: $s, description: "v1") { ... on SnapshotPayload { snapshot { id description } } } }',
        {"s": sid},
        user=alice,
    )
    snapshot_id = snap["data"]["createSnapshot"]["snapshot"]["id"]
    await gql(client, EXECUTE, {"input": {"sandboxId": sid, "command": "echo changed > hello.txt"}}, user=alice)

    read = await gql(
        client,
        f"""query($s: ID!, $snap: String!) {{ sandbox(id: $s) {{ {SANDBOX_FIELDS}
        files {{ name isDir }} text: fileContent(path: "hello.txt") {{ content encoding contentType }}
        binary: fileContent(path: "bin/data") {{ content encoding }} snapshots {{ id description }}
        diffSnapshot(snapshotId: $snap) }}
        diffSnapshot(sandboxId: $s, snapshotId: $snap) }}""",
        {"s": sid, "snap": snapshot_id},
        user=alice,
    )
    assert "errors" not in read, read
    got = read["data"]["sandbox"]
    assert [f["name"] for f in got["files"]] == ["bin", "hello.txt"]
    assert got["text"] == {"content": "changed\n", "encoding": "utf-8", "contentType": "text/plain; charset=utf-8"}
    assert base64.b64decode(got["binary"]["content"]) == b"\x00\xff" and got["binary"]["encoding"] == "base64"
    assert got["snapshots"] == [{"id": snapshot_id, "description": "v1"}]
    assert "-hello\n+changed\n" in got["diffSnapshot"] and read["data"]["diffSnapshot"] == got["diffSnapshot"]

    restored = await gql(
        client,
        """mutation($s: ID!, $snap: String!) { restoreSnapshot(sandboxId: $s, snapshotId: $snap) {
        __typename ... on RestoreSnapshotPayload { snapshot { id } checkpoint { description } } } }""",
        {"s": sid, "snap": snapshot_id},
        user=alice,
    )
    assert restored["data"]["restoreSnapshot"]["checkpoint"] == {"description": "restore checkpoint"}
    after = await gql(
        client,
        'query($s: ID!) { sandbox(id: $s) { fileContent(path: "hello.txt") { content } } }',
        {"s": sid},
        user=alice,
    )
    assert after["data"]["sandbox"]["fileContent"]["content"] == "hello\n"

    traversal = await gql(
        client,
        'query($s: ID!) { sandbox(id: $s) { fileContent(path: "../../etc/passwd") { content } } }',
        {"s": sid},
        user=alice,
    )
    assert traversal["errors"][0]["extensions"]["code"] == "SANDBOX_PATH_INVALID"

    # Bob: NotFound everywhere.
    theirs = await gql(client, "query($s: ID!) { sandbox(id: $s) { id } }", {"s": sid}, user=bob)
    assert theirs["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    theirs = await gql(client, EXECUTE, {"input": {"sandboxId": sid, "command": "cat hello.txt"}}, user=bob)
    assert theirs["data"]["executeCommand"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": "Sandbox not found",
    }
    deleted = await gql(client, "mutation($s: ID!) { deleteSandbox(id: $s) { __typename } }", {"s": sid}, user=bob)
    assert deleted["data"]["deleteSandbox"]["__typename"] == "NotFoundError"
    deleted = await gql(
        client,
        "mutation($s: ID!) { deleteSandbox(id: $s) { __typename ... on DeleteSandboxPayload { deletedId } } }",
        {"s": sid},
        user=alice,
    )
    assert deleted["data"]["deleteSandbox"]["deletedId"] == sid


async def test_session_output_subscription_and_status(
    client: httpx.AsyncClient, sbx: SandboxServer, alice: UserHandle
) -> None:
    sid = (await ensure(client, alice))["id"]
    started = await gql(
        client,
        EXECUTE,
        {
            "input": {
                "sandboxId": sid,
                "command": "for i in 1 2 3; do echo tick$i; sleep 0.2; done",
                "blocking": False,
                "sessionName": "ticker",
            }
        },
        user=alice,
    )
    session = started["data"]["executeCommand"]["session"]
    assert session["name"] == "ticker" and session["status"] == "running" and session["port"] > 0

    query = """subscription($s: ID!, $n: String!, $o: Int!) { sessionOutput(sandboxId: $s, sessionName: $n, fromOffset: $o) {
        offset nextOffset data done status exitCode } }"""
    chunks: list[dict[str, Any]] = []
    async with connect(sbx.ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {alice.access_token}"}})
        )
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": {"s": sid, "n": "ticker", "o": 0}},
                }
            )
        )
        while (message := json.loads(await socket.recv()))["type"] != "complete":
            assert message["type"] == "next", message
            chunks.append(message["payload"]["data"]["sessionOutput"])
    assert "".join(c["data"] for c in chunks) == "tick1\ntick2\ntick3\n"
    assert chunks[-1]["done"] and chunks[-1]["status"] == "exited" and chunks[-1]["exitCode"] == 0
    status = await gql(
        client,
        'query($s: ID!) { sessionStatus(sandboxId: $s, sessionName: "ticker") { status exitCode outputTail } }',
        {"s": sid},
        user=alice,
    )
    assert status["data"]["sessionStatus"] == {"status": "exited", "exitCode": 0, "outputTail": "tick1\ntick2\ntick3\n"}


async def test_preview_url_over_graphql(client: httpx.AsyncClient, alice: UserHandle) -> None:
    sid = (await ensure(client, alice))["id"]
    started = await gql(
        client,
        EXECUTE,
        {
            "input": {
                "sandboxId": sid,
                "command": "python3 -m http.server $PORT --bind 127.0.0.1",
                "blocking": False,
                "devServer": True,
            }
        },
        user=alice,
    )
    session = started["data"]["executeCommand"]["session"]
    assert session["name"] == "dev-server" and isinstance(session["port"], int)
    link = await gql(
        client,
        "query($s: ID!) { previewUrl(sandboxId: $s) { url port sessionName expiresAt } }",
        {"s": sid},
        user=alice,
    )
    assert link["data"]["previewUrl"]["port"] == session["port"]
    url = link["data"]["previewUrl"]["url"]
    async with httpx.AsyncClient(timeout=10) as browser:
        for _ in range(50):  # no readiness wait here: poll until the server listens
            page = await browser.get(url)
            if page.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert page.status_code == 200 and "Directory listing" in page.text
    stopped = await gql(
        client,
        'mutation($s: ID!) { stopSession(sandboxId: $s, sessionName: "dev-server") { ... on SessionPayload { session { status } } } }',
        {"s": sid},
        user=alice,
    )
    assert stopped["data"]["stopSession"]["session"]["status"] == "killed"
