"""The floor for bench_nested_query: a hand-written Starlette endpoint that checks the same token, runs
the same SQL as the GraphQL loaders (one query per level, window functions per parent) and returns the
same JSON. Whatever GraphQL costs beyond this is the price of the GraphQL layer.

    RUNPLANE_DATABASE_URL=... RUNPLANE_JWT_SECRET=... uvicorn bench.floor_app:app --port 8001
"""

from __future__ import annotations

import base64
import os
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise import Tortoise, connections

from runplane.config import tortoise_config

SECRET = os.environ["RUNPLANE_JWT_SECRET"]


def gid(kind: str, raw: object) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{raw}".encode()).decode().rstrip("=")


async def rows(sql: str, values: list[Any]) -> list[dict[str, Any]]:
    return await connections.get("default").execute_query_dict(sql, values)


def marks(count: int, start: int = 1) -> str:
    postgres = connections.get("default").capabilities.dialect == "postgres"
    return ", ".join(f"${i}" if postgres else "?" for i in range(start, start + count))


def db(value: uuid.UUID | str) -> Any:
    postgres = connections.get("default").capabilities.dialect == "postgres"
    return uuid.UUID(str(value)) if postgres else str(value)


async def ranked(
    table: str, parent: str, ids: list[Any], limit: int, order: str, owner: Any | None
) -> dict[str, list[dict[str, Any]]]:
    if not ids:
        return {}
    values = [db(i) for i in ids]
    where = f"{parent} IN ({marks(len(values))})"
    if owner is not None:
        values.append(db(owner))
        where += f" AND owner_id = {marks(1, len(values))}"
    values.append(limit)
    sql = (
        f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {parent} ORDER BY {order}) AS rp_rank "
        f"FROM {table} WHERE {where}) ranked WHERE rp_rank <= {marks(1, len(values))} ORDER BY {order}"
    )
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in await rows(sql, values):
        grouped[str(row[parent])].append(row)
    return grouped


async def nested(request: Request) -> Response:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="runplane", issuer="runplane")
    user_id = claims["sub"]
    await rows(f"SELECT 1 FROM auth_sessions WHERE id = {marks(1)} AND revoked_at IS NULL", [db(claims["sid"])])
    projects = await rows(
        f"SELECT * FROM projects WHERE owner_id = {marks(1)} ORDER BY created_at DESC, id DESC LIMIT 11", [db(user_id)]
    )
    projects = projects[:10]
    threads = await ranked("threads", "project_id", [p["id"] for p in projects], 6, "created_at DESC, id DESC", user_id)
    thread_ids = [t["id"] for ts in threads.values() for t in ts[:5]]
    runs = await ranked("agent_runs", "thread_id", thread_ids, 4, "created_at DESC, id DESC", user_id)
    run_ids = [r["id"] for rs in runs.values() for r in rs[:3]]
    events = await ranked("agent_run_events", "run_id", run_ids, 3, "sequence DESC", None)

    def run_json(run: dict[str, Any]) -> dict[str, Any]:
        last = [{"sequence": e["sequence"], "type": e["type"]} for e in reversed(events.get(str(run["id"]), []))]
        return {"node": {"status": run["status"], "lastEvents": last}}

    def thread_json(thread: dict[str, Any]) -> dict[str, Any]:
        return {
            "node": {
                "id": gid("Thread", thread["id"]),
                "runs": {"edges": [run_json(r) for r in runs.get(str(thread["id"]), [])[:3]]},
            }
        }

    def project_json(project: dict[str, Any]) -> dict[str, Any]:
        edges = [thread_json(t) for t in threads.get(str(project["id"]), [])[:5]]
        return {"node": {"name": project["name"], "threads": {"edges": edges}}}

    return JSONResponse({"data": {"projects": {"edges": [project_json(p) for p in projects]}}})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await Tortoise.init(config=tortoise_config(os.environ["RUNPLANE_DATABASE_URL"]), _enable_global_fallback=True)
    yield
    await Tortoise.close_connections()


app = Starlette(routes=[Route("/floor", nested, methods=["POST", "GET"])], lifespan=lifespan)
