"""REST request models (runplane/rest_compat/bodies.py): the document's limits are the resolvers', and the
parser enforces exactly what the document says, for JSON and for the multipart form of /agent/initiate."""

from __future__ import annotations

import uuid

import httpx

from runplane.resolvers import agent_runs, billing, integrations, projects, threads
from runplane.resolvers import sandboxes as sandbox_ops
from runplane.resolvers.pagination import MAX_PAGE
from runplane.rest_compat import api
from runplane.rest_compat.openapi import build_openapi
from tests.support import UserHandle

DOCUMENT = build_openapi(api)


def body_property(path: str, name: str) -> dict[str, object]:
    schema = DOCUMENT["paths"]["/api" + path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    prop: dict[str, object] = schema["properties"][name]
    return prop.get("anyOf", [prop])[0]  # type: ignore[return-value]


def test_documented_limits_are_the_resolvers() -> None:
    assert body_property("/agent/initiate", "idempotency_key")["maxLength"] == agent_runs.MAX_IDEMPOTENCY_KEY
    assert body_property("/thread/{thread_id}/agent/start", "idempotency_key")["maxLength"] == 200
    assert body_property("/agent/initiate", "prompt")["maxLength"] == agent_runs.MAX_PROMPT
    assert body_property("/projects", "name")["maxLength"] == projects.MAX_NAME
    assert body_property("/threads", "title")["maxLength"] == threads.MAX_TITLE
    messages = DOCUMENT["paths"]["/api/thread/{thread_id}/messages"]["get"]["parameters"]
    assert next(p for p in messages if p["name"] == "limit")["schema"]["maximum"] == threads.MAX_MESSAGES_PAGE
    assert query_schema("get", "/projects", "limit")["maximum"] == MAX_PAGE
    assert body_property("/agent/initiate", "name")["maxLength"] == agent_runs.MAX_PROJECT_NAME
    assert query_schema("get", "/billing/usage-history", "days")["maximum"] == billing.MAX_HISTORY_DAYS
    assert query_schema("get", "/composio/tools/list", "limit")["maximum"] == integrations.MAX_TOOLS_PAGE
    assert query_schema("get", "/composio/profiles/check-name-availability", "name")["maxLength"] == (
        integrations.MAX_PROFILE_NAME
    )


def query_schema(method: str, path: str, name: str) -> dict[str, object]:
    parameters = DOCUMENT["paths"]["/api" + path][method]["parameters"]
    schema: dict[str, object] = next(p for p in parameters if p["name"] == name)["schema"]
    return schema


def test_the_sandbox_routes_document_the_resolvers_limits() -> None:
    """The sandbox routes once documented bare types: no bound the resolvers check appeared in the document."""
    sandbox = "/sandboxes/{sandbox_id}"
    assert body_property(sandbox + "/execute", "command")["maxLength"] == sandbox_ops.MAX_COMMAND
    assert body_property(sandbox + "/execute", "timeout")["maximum"] == sandbox_ops.MAX_TIMEOUT_SECONDS
    assert body_property(sandbox + "/execute", "env")["maxProperties"] == sandbox_ops.MAX_ENV_VARS
    assert body_property(sandbox + "/execute", "session_name")["maxLength"] == sandbox_ops.MAX_SESSION_NAME
    assert body_property(sandbox + "/execute", "cwd")["maxLength"] == sandbox_ops.MAX_PATH
    assert body_property(sandbox + "/snapshots", "description")["maxLength"] == sandbox_ops.MAX_SNAPSHOT_DESCRIPTION
    assert body_property(sandbox + "/files/json", "path")["maxLength"] == sandbox_ops.MAX_PATH
    deleted = DOCUMENT["paths"]["/api" + sandbox + "/files"]["delete"]["requestBody"]["content"]["application/json"]
    assert deleted["schema"]["properties"]["paths"]["maxItems"] == sandbox_ops.MAX_DELETE_PATHS
    upload = DOCUMENT["paths"]["/api" + sandbox + "/files"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"]["properties"]["file"]["maxItems"] == sandbox_ops.MAX_UPLOAD_FILES
    assert query_schema("get", sandbox + "/files/tree", "max_entries")["maximum"] == sandbox_ops.MAX_TREE_ENTRIES
    assert query_schema("get", sandbox + "/preview-url", "port")["maximum"] == sandbox_ops.MAX_PORT
    offset = sandbox_ops.MAX_OUTPUT_OFFSET
    assert query_schema("get", sandbox + "/sessions/{session_name}/output", "after")["exclusiveMaximum"] == offset
    assert query_schema("get", sandbox + "/dev-server/stream", "from_offset")["exclusiveMaximum"] == offset
    assert query_schema("get", sandbox + "/download-archive", "format")["enum"] == list(sandbox_ops.ARCHIVE_FORMATS)


async def test_sandbox_integers_are_ascii_and_bounded_before_any_lookup(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    """A sandbox id nobody owns: the query is refused first, naming its parameter, the same for every caller."""
    sandbox = f"/api/sandboxes/{uuid.uuid4()}"
    cases = [
        (sandbox + "/files/tree", "max_entries", ["0", str(sandbox_ops.MAX_TREE_ENTRIES + 1), "١٢", "²"]),
        (sandbox + "/preview-url", "port", ["0", str(sandbox_ops.MAX_PORT + 1), "８０", "³"]),
        (sandbox + "/sessions/s/output", "after", ["-1", str(sandbox_ops.MAX_OUTPUT_OFFSET), "٣"]),
        (sandbox + "/sessions/s/stream", "from_offset", ["-1", str(sandbox_ops.MAX_OUTPUT_OFFSET), "¹"]),
        (sandbox + "/dev-server/stream", "from_offset", [str(sandbox_ops.MAX_OUTPUT_OFFSET), "１"]),
    ]
    for url, name, values in cases:
        for value in values:
            response = await client.get(url, params={name: value}, headers=alice.headers)
            assert response.status_code == 422 and response.json()["field"] == name, (url, value, response.text)


async def test_an_idempotency_key_over_the_limit_is_refused_as_json_and_as_a_form(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    key = "k" * (agent_runs.MAX_IDEMPOTENCY_KEY + 1)
    as_json = await client.post(
        "/api/agent/initiate", json={"prompt": "hi", "idempotency_key": key}, headers=alice.headers
    )
    as_form = await client.post(
        "/api/agent/initiate", data={"prompt": "hi", "idempotency_key": key}, files={}, headers=alice.headers
    )
    for response in (as_json, as_form):
        assert response.status_code == 422 and response.json()["field"] == "idempotency_key", response.text


async def test_json_types_are_exact_and_unknown_fields_ignored(client: httpx.AsyncClient, alice: UserHandle) -> None:
    wrong = await client.post("/api/projects", json={"name": 5}, headers=alice.headers)
    assert wrong.status_code == 422 and wrong.json()["field"] == "name"
    extra = await client.post("/api/projects", json={"name": "p", "colour": "blue"}, headers=alice.headers)
    assert extra.status_code == 201, extra.text
    surrogate = await client.post(
        "/api/projects", content=b'{"name": "\\ud800"}', headers={**alice.headers, "content-type": "application/json"}
    )
    assert surrogate.status_code == 422


async def test_query_models_refuse_out_of_range_and_non_ascii_values(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    for params in ({"limit": "0"}, {"limit": "101"}, {"limit": "１"}, {"limit": "abc"}):
        response = await client.get("/api/projects", params=params, headers=alice.headers)
        assert response.status_code == 422 and response.json()["field"] == "limit", (params, response.text)
    assert (await client.get("/api/projects", params={"limit": ""}, headers=alice.headers)).status_code == 200
