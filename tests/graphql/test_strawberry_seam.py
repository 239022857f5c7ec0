"""The seam with Strawberry's and graphql-core's internals (pinned below their next minor in pyproject.toml).

runplane subclasses Strawberry's ASGI view, its WebSocket protocol handlers, its Schema and Info, and
graphql-core's execution context (through Strawberry's). A release that renames a hook turns our override
into dead code without an error; one that changes a signature breaks at request time. These tests fail first,
on the release that does it, so that the pin is raised only after they pass (like tests/test_cli.py's uvicorn
protocol checks). If compiled.py's imports break, the schema still builds with graphql-core's executor.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from typing import Any

import pytest
import strawberry
from strawberry.asgi import GraphQL
from strawberry.schema.schema import Schema, StrawberryGraphQLCoreExecutionContext
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.info import Info

from runplane.config import Settings
from runplane.graphql_view import RunplaneGraphQL
from runplane.graphql_ws import LegacyWSHandler, TransportWSHandler
from runplane.schema import RunplaneSchema, build_schema, compiled_executor
from runplane.schema import compiled as compiled_module
from runplane.schema.compiled import CompiledExecutor, LazyInfo

# Ours, the Strawberry class it subclasses, and the names it adds that the base does not have.
SUBCLASSES: list[tuple[type[Any], type[Any], set[str]]] = [
    (RunplaneGraphQL, GraphQL, {"negotiate_transport", "refusal_response"}),
    (LegacyWSHandler, BaseGraphQLWSHandler, set()),
    (TransportWSHandler, BaseGraphQLTransportWSHandler, set()),
    (RunplaneSchema, Schema, set()),
    (CompiledExecutor, StrawberryGraphQLCoreExecutionContext, {"_execute_compiled"}),
    (LazyInfo, Info, {"_raw_info"}),
]
IDS = [ours.__name__ for ours, _, _ in SUBCLASSES]


def own_names(cls: type[Any]) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("__") and name != "_abc_impl"}


@pytest.mark.parametrize(("ours", "base", "added"), SUBCLASSES, ids=IDS)
def test_every_override_still_names_a_base_attribute(ours: type[Any], base: type[Any], added: set[str]) -> None:
    assert issubclass(ours, base)
    renamed = sorted(name for name in own_names(ours) - added if not hasattr(base, name))
    assert not renamed, f"{base.__qualname__} no longer has {renamed}: the override would never be called"


def accepts(ours: inspect.Signature, theirs: inspect.Signature) -> list[str]:
    """Parameters the base's callers may pass that our override would refuse."""
    ours_params = ours.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ours_params.values()):
        return []
    return [name for name, p in theirs.parameters.items() if p.kind is not p.VAR_KEYWORD and name not in ours_params]


@pytest.mark.parametrize(("ours", "base", "added"), SUBCLASSES, ids=IDS)
def test_overrides_accept_what_the_base_is_called_with(ours: type[Any], base: type[Any], added: set[str]) -> None:
    mismatched = {}
    for name in sorted(own_names(ours) - added):
        mine, theirs = vars(ours)[name], inspect.getattr_static(base, name)
        if not (inspect.isfunction(mine) and inspect.isfunction(theirs)):
            continue
        missing = accepts(inspect.signature(mine), inspect.signature(theirs))
        if missing:
            mismatched[name] = missing
    assert not mismatched, f"{base.__qualname__}'s methods gained parameters our overrides lack: {mismatched}"


@strawberry.type
class Seam:
    name: str = "seam"


@strawberry.type
class SeamQuery:
    @strawberry.field
    def seams(self, first: int = 2) -> list[Seam]:
        return [Seam() for _ in range(first)]


async def test_the_compiled_executor_runs_queries_rather_than_falling_back() -> None:
    """graphql-core's field collection and argument values, used by the planner: a query is compiled."""
    assert build_schema(Settings()).execution_context_class is CompiledExecutor
    schema = strawberry.Schema(query=SeamQuery, execution_context_class=compiled_executor())
    before = dict(compiled_module.stats)
    result = await schema.execute("query Seam { seams(first: 3) { name } }")
    assert result.errors is None and result.data == {"seams": [{"name": "seam"}] * 3}
    changed = {k: compiled_module.stats[k] - before.get(k, 0) for k in compiled_module.stats}
    assert changed["compiled"] == 1 and changed["aborted"] == 0, changed


BLOCKED = """
import graphql.execution.collect_fields as moved

del moved.collect_subfields  # as if a graphql-core release had renamed it
import strawberry
from runplane.config import Settings
from runplane.schema import build_schema, compiled_executor

assert "Compiled" not in build_schema(Settings()).execution_context_class.__name__  # graphql-core's own


@strawberry.type
class Query:
    @strawberry.field
    def name(self) -> str:
        return "plain"


schema = strawberry.Schema(query=Query, execution_context_class=compiled_executor())
result = schema.execute_sync("{ name }")
assert result.errors is None and result.data == {"name": "plain"}, result
print("fell back")
"""


def test_moved_graphql_core_internals_fall_back_to_graphql_core() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "fell back" in done.stdout and "compiled queries are off" in done.stderr
