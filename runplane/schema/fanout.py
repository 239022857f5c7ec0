"""Fan-out fast path for the runEvents subscription over WebSockets.

Strawberry executes a subscription's selection and serializes the result once per subscriber per event.
For a run watched by a thousand clients with the same document that is a thousand identical executions.
Here an eligible document (one `runEvents` root field selecting only scalar fields) is executed and
serialized ONCE per (document, run, event) per process; every socket sharing it gets the same text,
framed with its own operation id. Anything else takes Strawberry's normal path.

Under runplane's uvicorn protocol (runplane/ws_protocol.py) a subscriber does not even get a reader
of its own: `deliver` makes it a member of the process's live group for (run, document)
(events/live.py), which reads the run once and writes each socket one batch of pre-framed bytes.
Elsewhere `payloads` is the per-subscriber path.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    execute,
    parse,
    validate,
)
from graphql.error import GraphQLSyntaxError
from graphql.execution.values import get_variable_values

from runplane.errors import DomainError
from runplane.events.encoder import SharedEncoder
from runplane.events.live import Framer, LiveGroups, Member
from runplane.events.types import RunEventMessage
from runplane.resolvers import agent_runs as ops
from runplane.schema.context import GraphQLContext
from runplane.schema.errors import formatted_domain_error
from runplane.schema.ids import from_global_id
from runplane.schema.run_events import RunEvent
from runplane.ws_protocol import DirectWrites, text_frame

SCALAR_FIELDS = frozenset({"sequence", "type", "createdAt", "payload", "__typename"})
TYPED_FIELDS = frozenset({"data"})  # RunEvent.data: the union of typed events, whose fields take no arguments
MAX_QUERY_CHARS = 4000
_payloads = SharedEncoder(max_entries=16384)
_groups = LiveGroups()
# A live socket whose unsent bytes (beyond what the kernel took) pass this is detached from its group;
# it catches up from the log once drained, or is closed (1013) if it does not drain in time.
LIVE_BOUND_BYTES = 256 * 1024
SLOW_CLOSE_SECONDS = 30.0
HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True)
class SharedSubscription:
    document: DocumentNode
    key: str
    run_id: object  # runId and after as the document or its variables give them: open_stream checks them
    after: object
    variables: dict[str, Any]


def plan(
    schema: GraphQLSchema, query: str, variables: dict[str, Any] | None, operation_name: str | None, max_aliases: int
) -> SharedSubscription | None:
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
def _checked_document(
    schema: GraphQLSchema, query: str, operation_name: str | None, max_aliases: int
) -> tuple[DocumentNode, FieldNode] | None:
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
    children = [c for c in field.selection_set.selections if isinstance(c, FieldNode)]
    if len(children) != len(field.selection_set.selections) or not all(
        not c.arguments
        and not c.directives
        and (
            (c.name.value in SCALAR_FIELDS and c.selection_set is None)
            or (c.name.value in TYPED_FIELDS and _constant_selection(c.selection_set))
        )
        for c in children
    ):
        return False
    aliases = len([child for child in children if child.alias is not None])
    # Each response key once: a repeated selection (`sequence sequence ...`) takes Strawberry's path, where the
    # schema's limits (schema/limits.py) refuse it before graphql-core's quadratic overlap check runs.
    keys = [(child.alias or child.name).value for child in children]
    return aliases <= max_aliases and len(keys) == len(set(keys))


def _constant_selection(selection_set: SelectionSetNode | None) -> bool:
    """Fields and inline fragments without arguments or directives, all the way down: the same output for
    every subscriber of an event. (Validation, run once per document, checks the rest.)"""
    if selection_set is None:
        return False
    for selection in selection_set.selections:
        if selection.directives or not isinstance(selection, (FieldNode, InlineFragmentNode)):
            return False
        if isinstance(selection, FieldNode) and selection.arguments:
            return False
        if selection.selection_set is not None and not _constant_selection(selection.selection_set):
            return False
    return True


def _arguments(field: FieldNode, variables: dict[str, Any]) -> tuple[Any, Any] | None:
    values: dict[str, Any] = {"after": 0}
    for argument in field.arguments or ():
        node = argument.value
        if isinstance(node, VariableNode):
            values[argument.name.value] = variables.get(node.name.value)
        elif isinstance(node, StringValueNode | IntValueNode):
            values[argument.name.value] = node.value
        else:
            return None
    return (values["runId"], values["after"]) if "runId" in values else None


async def payloads(
    schema: GraphQLSchema, context: GraphQLContext, shared: SharedSubscription
) -> AsyncGenerator[str, None]:
    """The `{"data": ...}` JSON text of each event, shared with every subscriber of the same document.

    Raises DomainError before the first item if the run is not the caller's or a limit refuses."""
    ctx = context.ctx
    stream = await ops.open_stream(ctx, run_id=from_global_id(str(shared.run_id), "AgentRun"), after=shared.after)
    async with aclosing(ops.follow(ctx, stream, heartbeat=HEARTBEAT_SECONDS)) as events:
        async for event in events:
            if event is not None:
                payload = await _payloads.encode_once_async(
                    shared.key, event, lambda e: _execute(schema, shared, context, e)
                )
                yield payload.decode()


async def deliver(
    schema: GraphQLSchema, context: GraphQLContext, shared: SharedSubscription, prefix: str, writes: DirectWrites
) -> None:
    """Sends every event of the subscription as `prefix + payload + "}"` until the run's stream ends.

    Raises DomainError before sending anything if the run is not the caller's or a limit refuses, and
    live.SinkGone once the socket is gone."""
    ctx = context.ctx
    stream = await ops.open_stream(ctx, run_id=from_global_id(str(shared.run_id), "AgentRun"), after=shared.after)
    try:

        async def encode(event: RunEventMessage) -> bytes:
            return await _payloads.encode_once_async(shared.key, event, lambda e: _execute(schema, shared, context, e))

        member = Member(stream.after, _framer(prefix.encode(), writes.raw_framing), _DirectSink(writes))
        group = ops.join_live_group(ctx, _groups, stream, shared.key, member, encode, heartbeat=HEARTBEAT_SECONDS)
        try:
            await group.serve(member)
        finally:
            group.leave(member)
    finally:
        await stream.release()


class _RawFramer:
    """Complete WebSocket frames, built once per batch and written as-is to every socket it fits."""

    __slots__ = ("_prefix", "key")

    def __init__(self, prefix: bytes) -> None:
        self.key = ("raw", prefix)
        self._prefix = prefix

    def build(self, payloads: Sequence[bytes]) -> bytes:
        prefix = self._prefix
        return b"".join([text_frame(prefix + payload + b"}") for payload in payloads])


class _TextFramer:
    """Message texts, framed per socket (a negotiated compression makes frames per-connection)."""

    __slots__ = ("_prefix", "key")

    def __init__(self, prefix: bytes) -> None:
        self.key = ("text", prefix)
        self._prefix = prefix

    def build(self, payloads: Sequence[bytes]) -> list[bytes]:
        prefix = self._prefix
        return [prefix + payload + b"}" for payload in payloads]


def _framer(prefix: bytes, raw: bool) -> Framer[bytes | list[bytes]]:
    return _RawFramer(prefix) if raw else _TextFramer(prefix)


class _DirectSink:
    __slots__ = ("_writes", "gone")

    def __init__(self, writes: DirectWrites) -> None:
        self.gone = False
        self._writes = writes

    def push(self, data: bytes | list[bytes]) -> bool:
        writes = self._writes
        sent = writes.write_framed(data) if isinstance(data, bytes) else writes.write_texts(data)
        if not sent:
            self.gone = True
            return False
        return writes.buffered() <= LIVE_BOUND_BYTES

    async def write(self, data: bytes | list[bytes]) -> None:
        if not self.push(data) and not self.gone:
            await self.recover()

    async def recover(self) -> bool:
        try:
            async with asyncio.timeout(SLOW_CLOSE_SECONDS):
                await self._writes.drained()
        except TimeoutError:
            self._writes.close(1013, "slow consumer: resubscribe with `after` set to the last sequence received")
        if not self._writes.open:
            self.gone = True
        return not self.gone


async def _execute(
    schema: GraphQLSchema, shared: SharedSubscription, context: GraphQLContext, event: RunEventMessage
) -> bytes:
    result = execute(
        schema,
        shared.document,
        root_value=RunEvent.from_event(event),
        context_value=context,
        variable_values=shared.variables,
    )
    if hasattr(result, "__await__"):
        result = await result
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def domain_error_payload(exc: DomainError) -> dict[str, Any]:
    return formatted_domain_error(exc)
