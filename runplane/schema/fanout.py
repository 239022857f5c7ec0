"""Fan-out fast path for the runEvents subscription over WebSockets.

Strawberry executes a subscription's selection and serializes the result once per subscriber per event.
For a run watched by a thousand clients with the same document that is a thousand identical executions.
Here an eligible document (one `runEvents` root field selecting only scalar fields) is executed and
serialized ONCE per (document, run, event) per process; every socket sharing it gets the same text,
framed with its own operation id. Anything else takes Strawberry's normal path.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)
from graphql.error import GraphQLSyntaxError
from graphql.execution.values import get_variable_values

from runplane.errors import DomainError
from runplane.events.encoder import SharedEncoder
from runplane.events.types import RunEvent as BusEvent
from runplane.resolvers import agent_runs as ops
from runplane.schema.agent_runs import RunEvent
from runplane.schema.context import GraphQLContext
from runplane.schema.ids import from_global_id

SCALAR_FIELDS = frozenset({"sequence", "type", "createdAt", "payload", "__typename"})
MAX_QUERY_CHARS = 4000
_payloads = SharedEncoder(max_entries=16384)


@dataclass(frozen=True)
class SharedSubscription:
    document: DocumentNode
    key: str
    run_id: Any
    after: Any
    variables: dict[str, Any]


def plan(schema: GraphQLSchema, query: str, variables: dict[str, Any] | None, operation_name: str | None, max_aliases: int) -> SharedSubscription | None:
    """The shared plan for an eligible runEvents document, or None (Strawberry handles it, errors included)."""
    if not isinstance(query, str) or len(query) > MAX_QUERY_CHARS:
        return None
    checked = _checked_document(schema, query, operation_name, max_aliases)
    if checked is None:
        return None
    document, root = checked
    arguments = _arguments(root, variables or {})
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    # Variables only feed runId and after, never the per-event output; still they must be valid,
    # or the first subscriber's errors would be shared. Invalid ones take Strawberry's path.
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if arguments is None or isinstance(coerced, list):
        return None
    run_id, after = arguments
    return SharedSubscription(document, query.strip(), run_id, after, variables or {})


@lru_cache(maxsize=256)
def _checked_document(schema: GraphQLSchema, query: str, operation_name: str | None, max_aliases: int) -> tuple[DocumentNode, FieldNode] | None:
    """Parse and validate once per distinct document: a thousand subscribers send the same one."""
    try:
        document = parse(query, max_tokens=500)
    except GraphQLSyntaxError:
        return None
    root = _single_run_events_field(document, operation_name)
    if root is None or not _flat_scalar_selection(root, max_aliases) or validate(schema, document):
        return None
    return document, root


def _single_run_events_field(document: DocumentNode, operation_name: str | None) -> FieldNode | None:
    definitions = document.definitions
    if len(definitions) != 1 or not isinstance(definitions[0], OperationDefinitionNode):
        return None
    operation = definitions[0]
    if operation.operation != OperationType.SUBSCRIPTION or operation.directives:
        return None
    if operation_name is not None and (operation.name is None or operation.name.value != operation_name):
        return None
    selections = operation.selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode) or selections[0].name.value != "runEvents":
        return None
    return selections[0]


def _flat_scalar_selection(field: FieldNode, max_aliases: int) -> bool:
    if field.directives or field.selection_set is None:
        return False
    children = field.selection_set.selections
    aliases = sum(1 for child in children if isinstance(child, FieldNode) and child.alias is not None)
    return aliases <= max_aliases and all(
        isinstance(c, FieldNode) and c.name.value in SCALAR_FIELDS and not c.arguments and not c.directives and c.selection_set is None
        for c in children
    )


def _arguments(field: FieldNode, variables: dict[str, Any]) -> tuple[Any, Any] | None:
    values: dict[str, Any] = {"after": 0}
    for argument in field.arguments:
        node = argument.value
        if node.kind == "variable":
            values[argument.name.value] = variables.get(node.name.value)  # type: ignore[attr-defined]
        elif node.kind in {"string_value", "int_value"}:
            values[argument.name.value] = node.value  # type: ignore[attr-defined]
        else:
            return None
    return (values["runId"], values["after"]) if "runId" in values else None


async def payloads(schema: GraphQLSchema, context: GraphQLContext, shared: SharedSubscription) -> AsyncIterator[str]:
    """The `{"data": ...}` JSON text of each event, shared with every subscriber of the same document.

    Raises DomainError before the first item if the run is not the caller's or a limit refuses."""
    ctx = context.ctx
    stream = await ops.open_stream(ctx, run_id=from_global_id(str(shared.run_id), "AgentRun"), after=shared.after)
    async with aclosing(ops.follow(ctx, stream, heartbeat=15.0)) as events:
        async for event in events:
            if event is not None:
                yield await _payloads.encode_once_async(shared.key, event, lambda e: _execute(schema, shared, context, e))


async def _execute(schema: GraphQLSchema, shared: SharedSubscription, context: GraphQLContext, event: BusEvent) -> str:
    result = execute(
        schema, shared.document, root_value=RunEvent.from_event(event), context_value=context, variable_values=shared.variables
    )
    if hasattr(result, "__await__"):
        result = await result  # type: ignore[misc]
    payload: dict[str, Any] = {"data": result.data}  # type: ignore[union-attr]
    if result.errors:  # type: ignore[union-attr]
        payload["errors"] = [error.formatted for error in result.errors]  # type: ignore[union-attr]
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def domain_error_payload(exc: DomainError) -> dict[str, Any]:
    return GraphQLError(exc.message, extensions={"code": exc.code}).formatted  # type: ignore[return-value]
