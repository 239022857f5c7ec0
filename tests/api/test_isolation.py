"""Cross-user isolation: Bob gets "not found" for every object of Alice's, on every REST route and
GraphQL field that takes an id, exactly as for an id that does not exist (no enumeration oracle),
never sees Alice's objects in his lists, and changes nothing of hers.

The matrix is data-driven. REST routes with a path parameter are covered automatically from the route
registry (PATH_PARAMS maps parameter names to Alice's objects); ids in bodies or query strings and
GraphQL fields need one line each. The guard tests fail when a route or field that takes an id is
added without being covered here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from graphql import GraphQLInputObjectType, GraphQLList, GraphQLNonNull, GraphQLScalarType

from runplane.rest_compat.registry import api
from runplane.schema import build_schema
from runplane.schema.ids import to_global_id
from tests.graphql.helpers import ws_execute
from tests.support import LiveServer, UserHandle, gql, register_user

TERMINAL = {"completed", "failed", "stopped", "cancelled"}

# --- the objects ---------------------------------------------------------------------------------------


@dataclass
class World:
    alice: UserHandle
    bob: UserHandle
    ids: dict[str, str]  # kind -> Alice's object id (bare UUID)
    bobs: dict[str, str] = field(default_factory=dict)  # Bob's own objects, so his lists are not trivially empty


GLOBAL_TYPE = {
    "project": "Project",
    "thread": "Thread",
    "session": "AuthSession",
    "run": "AgentRun",
    "message": "Message",
    "user": "User",
}


async def wait_terminal(client: httpx.AsyncClient, user: UserHandle, run_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = (await client.get(f"/api/agent-run/{run_id}/status", headers=user.headers)).json()["status"]
        if status in TERMINAL:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


async def objects_of(client: httpx.AsyncClient, user: UserHandle, tag: str) -> dict[str, str]:
    project = (await client.post("/api/projects", json={"name": f"{tag} project"}, headers=user.headers)).json()[
        "project_id"
    ]
    thread = (
        await client.post("/api/threads", json={"project_id": project, "title": f"{tag} thread"}, headers=user.headers)
    ).json()["thread_id"]
    posted = await gql(
        client,
        "mutation($i: PostMessageInput!) { postMessage(input: $i) { ... on MessagePayload { message { id } } } }",
        {"i": {"threadId": thread, "content": f"{tag} message"}},
        user=user,
    )
    started = await client.post(
        f"/api/thread/{thread}/agent/start", json={"prompt": f"{tag} prompt"}, headers=user.headers
    )
    assert started.status_code == 200, started.text
    run = started.json()["agent_run_id"]
    await wait_terminal(client, user, run)
    login = await client.post(
        "/api/auth/token", json={"email": user.email, "password": user.password}
    )  # a second session
    sessions = (
        await client.get("/api/auth/sessions", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    ).json()
    session = next(s["session_id"] for s in sessions["sessions"] if s["current"])
    message = posted["data"]["postMessage"]["message"]["id"]
    return {
        "project": project,
        "thread": thread,
        "run": run,
        "session": session,
        "message": message,
        "user": user.user_id,
    }


@pytest.fixture(scope="module")
async def world(server: LiveServer) -> AsyncIterator[World]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        alice, bob = await register_user(client), await register_user(client)
        yield World(alice, bob, await objects_of(client, alice, "alice"), await objects_of(client, bob, "bob"))


# --- REST ----------------------------------------------------------------------------------------------

# Path parameter -> which of Alice's objects goes in it (None: not an object anyone owns). Every route
# with an object parameter is tested from this.
PATH_PARAMS: dict[str, str | None] = {
    "project_id": "project",
    "thread_id": "thread",
    "session_id": "session",
    "agent_run_id": "run",
    # not objects anyone owns: public facts, or a name inside an object whose own id is checked
    "country_code": None,
    "session_name": None,
    "slug": None,
    "flag_name": None,
}
# Owned objects that objects_of() cannot make yet: sandboxes and snapshots (the session server's tmp dir
# is 0700, which the sandbox workspace check refuses), Composio profiles and connections. Move each to
# PATH_PARAMS with an entry in objects_of() when it can; the guard fails for any NEW parameter in neither.
PENDING_PATH_PARAMS = {"sandbox_id", "snapshot_id", "profile_id", "connection_id"}
# The same for GraphQL root fields (add GQL_CASES lines and remove them from here).
PENDING_FIELDS = {
    "createSnapshot",
    "deleteFiles",
    "deleteSandbox",
    "deleteSnapshot",
    "diffSnapshot",
    "ensureSandbox",
    "executeCommand",
    "previewUrl",
    "projectSandbox",
    "restoreSnapshot",
    "sandbox",
    "sessionOutput",
    "sessionStatus",
    "stopSession",
    "writeFiles",
}
# Bodies some routes need to reach their ownership check.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/thread/{thread_id}/agent/start"): {"prompt": "hijack"},
    ("POST", "/thread/{thread_id}/messages"): {"content": "hijack"},
}


@dataclass(frozen=True)
class RestCase:
    method: str
    route: str  # as registered (without /api)
    query: dict[str, str] = field(default_factory=dict)  # name -> object kind
    body: dict[str, str] = field(default_factory=dict)  # name -> object kind ("=value" for a literal)
    status: int = 404  # admin routes refuse a non-admin before looking anything up: 403

    @property
    def id(self) -> str:
        return (
            f"{self.method} {self.route}"
            + (f"?{','.join(self.query)}" if self.query else "")
            + (f" {{{','.join(self.body)}}}" if self.body else "")
        )


# Ids outside the path: one line each.
REST_EXTRA = [
    RestCase("GET", "/threads", query={"project_id": "project"}),
    RestCase("POST", "/threads", body={"project_id": "project", "title": "=hijack"}),
    RestCase("POST", "/billing/admin/reset-quotas", body={"user_id": "user"}, status=403),
    RestCase("GET", "/billing/admin/quota-status", query={"user_id": "user"}, status=403),
    # Cheatcode's BYOK proxy names the account: another user's id is "not found", and nothing is stored for either.
    RestCase("POST", "/billing/openrouter-key", body={"account_id": "user", "api_key": "=sk-or-v1-" + "0" * 32}),
    RestCase(
        "POST", "/billing/openrouter-key", query={"account_id": "user"}, body={"api_key": "=sk-or-v1-" + "0" * 32}
    ),
    RestCase("GET", "/billing/openrouter-key/status", query={"account_id": "user"}),
    RestCase("DELETE", "/billing/openrouter-key", query={"account_id": "user"}),
]


# Required query parameters (checked before the lookup: without them every caller gets the same 422).
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/project/{project_id}/git/file-content"): {"file_path": "README.md"},
}


def path_cases() -> list[RestCase]:
    def owned(path: str) -> bool:
        params = [part[1:-1] for part in path.split("/") if part.startswith("{")]
        return not PENDING_PATH_PARAMS & set(params) and any(PATH_PARAMS.get(p) for p in params)

    return [RestCase(r.method, r.path, status=403 if r.auth == "admin" else 404) for r in api.routes if owned(r.path)]


def rest_request(case: RestCase, ids: dict[str, str]) -> tuple[str, dict[str, Any]]:
    url = "/api" + case.route
    for param, kind in PATH_PARAMS.items():
        if kind is not None:
            url = url.replace("{" + param + "}", ids[kind])
    query = {**QUERIES.get((case.method, case.route), {}), **{name: ids[kind] for name, kind in case.query.items()}}
    body = {name: kind[1:] if kind.startswith("=") else ids[kind] for name, kind in case.body.items()}
    body = {**BODIES.get((case.method, case.route), {}), **body}
    kwargs: dict[str, Any] = {"params": query}
    if case.method in {"POST", "PUT", "PATCH"}:
        kwargs["json"] = body
    return url, kwargs


def strangers(ids: dict[str, str]) -> dict[str, str]:
    return {kind: str(uuid.uuid4()) for kind in ids}


@pytest.mark.parametrize("case", path_cases() + REST_EXTRA, ids=lambda c: c.id)
async def test_rest_route_hides_alices_objects_from_bob(
    client: httpx.AsyncClient, world: World, case: RestCase
) -> None:
    url, kwargs = rest_request(case, world.ids)
    response = await client.request(case.method, url, headers=world.bob.headers, **kwargs)
    assert response.status_code == case.status, (case.id, response.status_code, response.text)
    assert isinstance(response.json()["detail"], str)
    # the same answer as for an id that exists nowhere: nothing tells Bob that Alice's id is real
    url, kwargs = rest_request(case, strangers(world.ids))
    unknown = await client.request(case.method, url, headers=world.bob.headers, **kwargs)
    assert (unknown.status_code, unknown.json()) == (response.status_code, response.json())


# --- GraphQL -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GqlCase:
    field: str  # the root field under test
    kind: str  # which of Alice's objects $id is
    document: str
    transport: str = "http"  # or "ws" for subscriptions
    code: str = "NOT_FOUND"  # admin fields refuse a non-admin before looking anything up: FORBIDDEN
    # NULL: the field answers null (node, nodes' items) with no error, for a foreign id as for an unknown one


ERROR_RESULT = "__typename ... on UserError { code message }"
GQL_CASES = [
    GqlCase("node", "project", "query($id: ID!) { node(id: $id) { id } }", code="NULL"),
    GqlCase("nodes", "thread", "query($id: ID!) { nodes(ids: [$id, $id]) { id } }", code="NULL"),
    GqlCase("project", "project", "query($id: ID!) { project(id: $id) { id name } }"),
    GqlCase("thread", "thread", "query($id: ID!) { thread(id: $id) { id title } }"),
    GqlCase("threads", "project", "query($id: ID!) { threads(projectId: $id) { edges { node { id } } } }"),
    GqlCase("run", "run", "query($id: ID!) { run(id: $id) { id status } }"),
    GqlCase("runs", "thread", "query($id: ID!) { runs(threadId: $id) { edges { node { id } } } }"),
    GqlCase("events", "run", "query($id: ID!) { events(runId: $id) { sequence } }"),
    GqlCase(
        "createThread",
        "project",
        f'mutation($id: ID!) {{ createThread(input: {{projectId: $id, title: "hijack"}}) {{ {ERROR_RESULT} }} }}',
    ),
    GqlCase(
        "postMessage",
        "thread",
        f'mutation($id: ID!) {{ postMessage(input: {{threadId: $id, content: "hijack"}}) {{ {ERROR_RESULT} }} }}',
    ),
    GqlCase(
        "updateProject",
        "project",
        f'mutation($id: ID!) {{ updateProject(input: {{id: $id, name: "hijacked"}}) {{ {ERROR_RESULT} }} }}',
    ),
    GqlCase("deleteProject", "project", f"mutation($id: ID!) {{ deleteProject(id: $id) {{ {ERROR_RESULT} }} }}"),
    GqlCase("revokeSession", "session", f"mutation($id: ID!) {{ revokeSession(id: $id) {{ {ERROR_RESULT} }} }}"),
    GqlCase(
        "startRun",
        "thread",
        f'mutation($id: ID!) {{ startRun(input: {{threadId: $id, prompt: "hijack"}}) {{ {ERROR_RESULT} }} }}',
    ),
    GqlCase("stopRun", "run", f"mutation($id: ID!) {{ stopRun(id: $id) {{ {ERROR_RESULT} }} }}"),
    GqlCase("pauseRun", "run", f"mutation($id: ID!) {{ pauseRun(id: $id) {{ {ERROR_RESULT} }} }}"),
    GqlCase("resumeRun", "run", f"mutation($id: ID!) {{ resumeRun(id: $id) {{ {ERROR_RESULT} }} }}"),
    GqlCase("runEvents", "run", "subscription($id: ID!) { runEvents(runId: $id) { sequence type } }", transport="ws"),
    # the same through Strawberry's own subscription path (a directive keeps it off the shared fan-out)
    GqlCase(
        "runEvents",
        "run",
        "subscription($id: ID!) { runEvents(runId: $id) { sequence @include(if: true) } }",
        transport="ws",
    ),
    GqlCase("deploymentStatus", "project", "query($id: ID!) { deploymentStatus(projectId: $id) { __typename } }"),
    GqlCase(
        "deployProject",
        "project",
        f"mutation($id: ID!) {{ deployProject(input: {{projectId: $id}}) {{ {ERROR_RESULT} }} }}",
    ),
    GqlCase(
        "updateDeployment",
        "project",
        f"mutation($id: ID!) {{ updateDeployment(input: {{projectId: $id}}) {{ {ERROR_RESULT} }} }}",
    ),
    GqlCase(
        "userBillingStatus",
        "user",
        "query($id: ID!) { userBillingStatus(userId: $id) { __typename } }",
        code="FORBIDDEN",
    ),
    GqlCase(
        "resetQuotas",
        "user",
        f"mutation($id: ID!) {{ resetQuotas(userId: $id) {{ {ERROR_RESULT} }} }}",
        code="FORBIDDEN",
    ),
]


TYPED = {"NOT_FOUND": "NotFoundError", "FORBIDDEN": "ForbiddenError"}


def not_found_answer(case: GqlCase, result: dict[str, Any]) -> dict[str, Any]:
    """The refusal in a result (a top-level error or a typed NotFoundError/ForbiddenError), or fail."""
    errors = result.get("errors") or []
    if case.code == "NULL":
        assert not errors and result["data"][case.field] in (None, [None, None]), (case.field, result)
        return {"null": True}
    if errors:
        assert [e["extensions"]["code"] for e in errors] == [case.code], (case.field, result)
        assert (result.get("data") or {}).get(case.field) is None
        return {"message": errors[0]["message"], "code": case.code}
    payload = result["data"][case.field]
    assert payload["__typename"] == TYPED[case.code] and payload["code"] == case.code, (case.field, result)
    return {"message": payload["message"], "code": payload["code"]}


async def run_case(
    client: httpx.AsyncClient, server: LiveServer, user: UserHandle, case: GqlCase, raw_id: str
) -> dict[str, Any]:
    if case.transport == "ws":
        [messages] = await asyncio.wait_for(ws_execute(server.ws_url, user, [(case.document, {"id": raw_id})]), 10)
        first = messages[0]
        assert first["type"] in {"error", "next"}, messages
        errors = first["payload"] if first["type"] == "error" else first["payload"].get("errors", [])
        return {"data": None, "errors": errors}
    return await gql(client, case.document, {"id": raw_id}, user=user)


@pytest.mark.parametrize("id_form", ["global", "uuid"])
@pytest.mark.parametrize("case", GQL_CASES, ids=lambda c: c.field)
async def test_graphql_field_hides_alices_objects_from_bob(
    client: httpx.AsyncClient, server: LiveServer, world: World, case: GqlCase, id_form: str
) -> None:
    def form(raw: str) -> str:
        return to_global_id(GLOBAL_TYPE[case.kind], raw) if id_form == "global" else raw

    answer = not_found_answer(case, await run_case(client, server, world.bob, case, form(world.ids[case.kind])))
    unknown = not_found_answer(case, await run_case(client, server, world.bob, case, form(str(uuid.uuid4()))))
    assert answer == unknown


# --- lists and state -----------------------------------------------------------------------------------


async def test_bobs_lists_never_contain_alices_objects(client: httpx.AsyncClient, world: World) -> None:
    bob, mine, hers = world.bob.headers, world.bobs, set(world.ids.values())
    rest = [
        ("/api/projects", "projects", "project_id"),
        ("/api/threads", "threads", "thread_id"),
        ("/api/auth/sessions", "sessions", "session_id"),
        (f"/api/thread/{mine['thread']}/agent-runs", "agent_runs", "agent_run_id"),
    ]
    for url, key, id_key in rest:
        listed = [item[id_key] for item in (await client.get(url, headers=bob)).json()[key]]
        assert listed and not hers & set(listed), (url, listed)
    query = """query($t: ID!) {
      projects { edges { node { id threads { edges { node { id messages { edges { node { id } } } project { id } } } } } } }
      threads { edges { node { id } } }
      sessions { id }
      runs(threadId: $t) { edges { node { id thread { id } } } }
    }"""
    result = await gql(client, query, {"t": mine["thread"]}, user=world.bob)
    assert "errors" not in result, result
    seen = _ids_in(result["data"])
    assert seen and not {to_global_id(GLOBAL_TYPE[kind], raw) for kind, raw in world.ids.items()} & seen


def _ids_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {v for k, v in value.items() if k == "id"} | set().union(*(_ids_in(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_ids_in(v) for v in value)) if value else set()
    return set()


async def alices_state(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    alice, ids = world.alice.headers, world.ids
    thread = await gql(
        client,
        "query($id: ID!) { thread(id: $id) { title updatedAt messages(first: 100) { edges { node { id content } } } } }",
        {"id": ids["thread"]},
        user=world.alice,
    )
    run = (await client.get(f"/api/agent-run/{ids['run']}", headers=alice)).json()
    return {
        "project": (await client.get(f"/api/projects/{ids['project']}", headers=alice)).json(),
        "threads": (await client.get(f"/api/threads?project_id={ids['project']}", headers=alice)).json(),
        "thread": thread["data"]["thread"],
        "runs": (await client.get(f"/api/thread/{ids['thread']}/agent-runs", headers=alice)).json(),
        "run": run,
        "events": (await client.get(f"/api/agent-run/{ids['run']}/events", headers=alice)).json(),
        "sessions": sorted(
            s["session_id"] for s in (await client.get("/api/auth/sessions", headers=alice)).json()["sessions"]
        ),
    }


async def test_bobs_attempts_change_nothing_of_alices(
    client: httpx.AsyncClient, server: LiveServer, world: World
) -> None:
    before = await alices_state(client, world)
    assert world.ids["session"] in before["sessions"]
    for rest_case in path_cases() + REST_EXTRA:
        url, kwargs = rest_request(rest_case, world.ids)
        assert (
            await client.request(rest_case.method, url, headers=world.bob.headers, **kwargs)
        ).status_code == rest_case.status
    for gql_case in GQL_CASES:
        for raw in (world.ids[gql_case.kind], to_global_id(GLOBAL_TYPE[gql_case.kind], world.ids[gql_case.kind])):
            not_found_answer(gql_case, await run_case(client, server, world.bob, gql_case, raw))
    assert await alices_state(client, world) == before


async def test_the_matrix_reaches_real_objects_for_their_owner(client: httpx.AsyncClient, server: LiveServer) -> None:
    """Control: the owner making the same requests does not get the stranger's answer, so the 404s above come
    from ownership checks and not from a mis-built URL or query. (Whether the owner's request then succeeds
    is each capability's own tests' business.) Destructive operations run last."""
    carol = await register_user(client)
    ids = await objects_of(client, carol, "carol")
    unknown = strangers(ids)
    rest = sorted((c for c in path_cases() + REST_EXTRA if c.status == 404), key=lambda c: c.method == "DELETE")
    for rest_case in rest:
        url, kwargs = rest_request(rest_case, unknown)
        stranger = await client.request(rest_case.method, url, headers=carol.headers, **kwargs)
        url, kwargs = rest_request(rest_case, ids)
        response = await client.request(rest_case.method, url, headers=carol.headers, **kwargs)
        assert response.status_code not in {401, 403, 422} or _reached_the_workspace(response), (
            rest_case.id,
            response.status_code,
            response.text,
        )
        assert (response.status_code, response.text) != (stranger.status_code, stranger.text), (
            rest_case.id,
            response.text,
        )
    for gql_case in sorted((c for c in GQL_CASES if c.code == "NOT_FOUND"), key=lambda c: c.field == "deleteProject"):
        stranger_answer = not_found_answer(
            gql_case, await run_case(client, server, carol, gql_case, unknown[gql_case.kind])
        )
        result = await run_case(client, server, carol, gql_case, ids[gql_case.kind])
        payload = (result.get("data") or {}).get(gql_case.field)
        if isinstance(payload, dict) and payload.get("__typename") in TYPED.values():
            assert {"message": payload["message"], "code": payload["code"]} != stranger_answer, (gql_case.field, result)
        for error in result.get("errors") or []:
            assert {"message": error["message"], "code": error["extensions"]["code"]} != stranger_answer, (
                gql_case.field,
                result,
            )


def _reached_the_workspace(response: httpx.Response) -> bool:
    """A deploy of carol's (empty) workspace: 422 on `source_dir` means the project was found and its files were
    looked at, which is as far as an ownership check can be told apart from a mis-built request."""
    return response.status_code == 422 and response.json().get("field") == "source_dir"


# --- the matrix covers everything that takes an id -----------------------------------------------------


def test_every_rest_route_taking_an_id_is_in_the_matrix() -> None:
    covered = {(c.method, c.route, name) for c in REST_EXTRA for name in (*c.query, *c.body)}
    for route in api.routes:
        for param in [p[1:-1] for p in route.path.split("/") if p.startswith("{")]:
            assert param in PATH_PARAMS or param in PENDING_PATH_PARAMS, (
                f"{route.method} {route.path}: add '{param}' to PATH_PARAMS (None if nobody owns it)"
            )
        body_ids = [name for name in ((route.body or {}).get("properties") or {}) if name.endswith("_id")]
        query_ids = [q["name"] for q in route.query if q["name"].endswith("_id")]
        for name in body_ids + query_ids:
            assert (route.method, route.path, name) in covered, (
                f"{route.method} {route.path}: add a REST_EXTRA line for '{name}'"
            )


def _takes_id(arg_type: Any, seen: frozenset[str] = frozenset()) -> bool:
    while isinstance(arg_type, (GraphQLNonNull, GraphQLList)):
        arg_type = arg_type.of_type
    if isinstance(arg_type, GraphQLScalarType):
        return arg_type.name == "ID"
    if isinstance(arg_type, GraphQLInputObjectType) and arg_type.name not in seen:
        return any(_takes_id(f.type, seen | {arg_type.name}) for f in arg_type.fields.values())
    return False


def test_every_graphql_root_field_taking_an_id_is_in_the_matrix() -> None:
    schema = build_schema()._schema
    roots = [t for t in (schema.query_type, schema.mutation_type, schema.subscription_type) if t is not None]
    taking_ids = {
        name for root in roots for name, f in root.fields.items() if any(_takes_id(a.type) for a in f.args.values())
    }
    covered = {c.field for c in GQL_CASES}
    assert taking_ids <= covered | PENDING_FIELDS, (
        f"add GQL_CASES lines for {sorted(taking_ids - covered - PENDING_FIELDS)}"
    )
    assert not covered & PENDING_FIELDS, f"covered now, remove from PENDING_FIELDS: {sorted(covered & PENDING_FIELDS)}"
    assert PENDING_FIELDS <= taking_ids, f"gone, remove from PENDING_FIELDS: {sorted(PENDING_FIELDS - taking_ids)}"
