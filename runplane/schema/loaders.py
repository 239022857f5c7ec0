"""DataLoaders, named <Result>By<Key>Loader, made fresh for every operation (see schema/context.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.exceptions import WrongNumberOfResultsReturned
from strawberry.types.nodes import SelectedField, Selection

from runplane.errors import DomainError
from runplane.models import AgentRun, Project, Thread
from runplane.resolvers import agent_runs as run_ops
from runplane.resolvers import projects as project_ops
from runplane.resolvers import threads as thread_ops
from runplane.resolvers.context import RequestContext
from runplane.resolvers.pagination import PageArgs, page_args
from runplane.resolvers.validation import clean_limit

R = TypeVar("R")
A = TypeVar("A", bound=Hashable)  # a loader key's argument beside the parent id
ChildKey = tuple[uuid.UUID, int]  # (parent id, how many)
PageKey = tuple[uuid.UUID, PageArgs]  # (parent id, the page asked for)
DEFAULT_LAST_EVENTS = 5


def grouped_loader(
    fetch: Callable[[RequestContext, list[uuid.UUID], A], Awaitable[list[R]]], ctx: RequestContext
) -> DataLoader[tuple[uuid.UUID, A], R]:
    """Keys are (parent, argument): how many children, or which page of them. Parents asking with the same argument
    share one windowed query; `fetch` answers one result per parent id, in order."""

    async def batch(keys: Sequence[tuple[uuid.UUID, A]]) -> list[R]:
        by_arg: dict[A, list[uuid.UUID]] = defaultdict(list)
        for parent_id, arg in keys:
            by_arg[arg].append(parent_id)
        found: dict[tuple[uuid.UUID, A], R] = {}
        for arg, parent_ids in by_arg.items():
            for parent_id, result in zip(parent_ids, await fetch(ctx, parent_ids, arg), strict=True):
                found[(parent_id, arg)] = result
        return [found[key] for key in keys]

    return DataLoader(load_fn=batch)


class Loaders:
    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx
        self.ProjectByIdLoader: DataLoader[uuid.UUID, Project | None] = DataLoader(
            load_fn=lambda ids: project_ops.projects_by_ids(ctx, list(ids))
        )
        self.ThreadByIdLoader: DataLoader[uuid.UUID, Thread | None] = DataLoader(
            load_fn=lambda ids: thread_ops.threads_by_ids(ctx, list(ids))
        )
        self.ThreadsByProjectLoader = grouped_loader(thread_ops.thread_pages_by_project, ctx)
        self.MessagesByThreadLoader = grouped_loader(thread_ops.message_pages_by_thread, ctx)
        self.RunsByThreadLoader = grouped_loader(run_ops.run_pages_by_thread, ctx)
        self.ChildCountLoader: DataLoader[CountKey, int] = DataLoader(load_fn=lambda keys: _counts(ctx, keys))
        self.LastEventsByRunLoader = grouped_loader(run_ops.last_events_by_run, ctx)
        # Later capabilities register their loaders here by name.
        self.extra: dict[str, DataLoader[Any, Any]] = {}


CountKey = tuple[str, uuid.UUID]  # (connection, parent id)
COUNTS: dict[str, Callable[[RequestContext, list[uuid.UUID]], Awaitable[list[int]]]] = {
    "Project.threads": thread_ops.thread_counts_by_project,
    "Thread.messages": thread_ops.message_counts_by_thread,
    "Thread.runs": run_ops.run_counts_by_thread,
}


async def _counts(ctx: RequestContext, keys: Sequence[CountKey]) -> list[int]:
    """totalCount of nested connections: one GROUP BY per connection kind for all parents."""
    by_kind: dict[str, list[uuid.UUID]] = defaultdict(list)
    for kind, parent_id in keys:
        by_kind[kind].append(parent_id)
    found: dict[CountKey, int] = {}
    for kind, parent_ids in by_kind.items():
        found.update({(kind, p): n for p, n in zip(parent_ids, await COUNTS[kind](ctx, parent_ids), strict=True)})
    return [found[key] for key in keys]


def child_count(loaders: Loaders, kind: str, parent_id: uuid.UUID) -> Callable[[], Awaitable[int]]:
    return lambda: loaders.ChildCountLoader.load((kind, parent_id))


# Keys of the relation fields, shared by the fields and by `prefetch` so that both ask the loaders the same thing.
def page_key(row: Any, arguments: dict[str, Any]) -> PageKey:
    """The parent and its validated page arguments (first, after, last, before: InvalidInput when bad)."""
    return (
        row.id,
        page_args(
            first=_argument(arguments, "first"),
            after=arguments.get("after"),
            last=_argument(arguments, "last"),
            before=arguments.get("before"),
        ),
    )


def last_events_key(row: AgentRun, last: object) -> ChildKey:
    return (row.id, clean_limit(last, default=DEFAULT_LAST_EVENTS, maximum=100))


def resolved(loader: DataLoader[Any, Any], key: Hashable, shape: Callable[[Any], R]) -> R:
    """`shape(value)` at once when the loader already holds `key` (see `prefetch`), else an awaitable of it.

    Relation fields are plain `def`s returning this: graphql-core completes a plain value without the
    coroutine, future and gather it needs for each awaitable field, which were most of a nested query's cost.
    """
    future = loader.cache_map.get(key)
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return shape(future.result())
    return cast(R, _shaped(loader.load(key), shape))  # graphql-core awaits it


async def _shaped(value: Awaitable[Any], shape: Callable[[Any], R]) -> R:
    return shape(await value)


@dataclass(frozen=True)
class Relation:
    """A field that reads a loader: its key for a parent row, and (for nested prefetch) the rows it shows."""

    loader: str  # attribute of Loaders
    key: Callable[[Any, dict[str, Any]], Hashable]  # (parent row, the field's arguments) -> loader key
    child_type: str | None = None  # GraphQL type of the rows shown, when they have relations of their own
    connection: bool = False  # value is a Page shown as edges { node } / nodes

    def shown(self, value: Any) -> list[Any]:
        if value is None or isinstance(value, BaseException):
            return []
        return list(value.items) if self.connection else [value]


def _argument(arguments: dict[str, Any], name: str, default: int | None = None) -> object:
    value = arguments.get(name, default)  # literals come as their source text, variables already coerced
    return int(value) if isinstance(value, str) else value


RELATIONS: dict[tuple[str, str], Relation] = {
    ("Project", "threads"): Relation("ThreadsByProjectLoader", page_key, "Thread", connection=True),
    ("Thread", "runs"): Relation("RunsByThreadLoader", page_key, "AgentRun", connection=True),
    ("Thread", "messages"): Relation("MessagesByThreadLoader", page_key, connection=True),
    ("Thread", "project"): Relation("ProjectByIdLoader", lambda row, a: row.project_id, "Project"),
    ("AgentRun", "lastEvents"): Relation(
        "LastEventsByRunLoader", lambda row, a: last_events_key(row, _argument(a, "last", DEFAULT_LAST_EVENTS))
    ),
    ("AgentRun", "thread"): Relation("ThreadByIdLoader", lambda row, a: row.thread_id, "Thread"),
}


async def prefetch(loaders: Loaders, rows: Sequence[Any], type_name: str, selections: Iterable[Selection]) -> None:
    """Fill the loaders, one batched query per relation and level, with what `selections` (of `type_name`
    objects made from `rows`) will ask them, so that the relation fields below resolve synchronously.

    Only an optimization: a field whose key was not prefetched (or failed) loads it itself, as before, and
    meets and reports any error there. Directives are not evaluated: a field under @skip may be fetched for nothing.
    """
    for field in _fields(selections, type_name):
        relation = RELATIONS.get((type_name, field.name))
        if relation is None or not rows:
            continue
        try:
            keys = [relation.key(row, field.arguments) for row in rows]
        except (DomainError, ValueError, TypeError):
            continue
        loader: DataLoader[Any, Any] = getattr(loaders, relation.loader)
        values = await _fill(loader, keys)
        if relation.child_type is not None:
            children = [row for value in values for row in relation.shown(value)]
            below = _nodes(field.selections) if relation.connection else field.selections
            await prefetch(loaders, children, relation.child_type, below)


async def _fill(loader: DataLoader[Any, Any], keys: list[Any]) -> list[Any]:
    """What `gather(*map(loader.load, keys), return_exceptions=True)` gives (each key's value or exception),
    through the loader's cache, without a DataLoader task, a gather and their callbacks per key: the keys
    not cached yet get their (pending) futures in the cache at once, as `load` would, so anything else asking
    for them meanwhile waits for this one batch call; keys already pending elsewhere are awaited."""
    cache = loader.cache_map
    if not loader.cache or loader.max_batch_size is not None:
        return await asyncio.gather(*map(loader.load, keys), return_exceptions=True)
    futures: list[asyncio.Future[Any]] = []
    missing: dict[Any, asyncio.Future[Any]] = {}
    for key in keys:
        future = cache.get(key)
        if future is None:
            future = missing[key] = loader.loop.create_future()
            cache.set(key, future)
        futures.append(future)
    if missing:
        try:
            await _load_into(loader, missing)
        except BaseException:  # cancelled: whoever waits on these keys must not wait forever
            for future in missing.values():
                future.cancel()
            raise
    if any(not future.done() for future in futures):  # loaded by someone else, still in flight
        await asyncio.gather(*futures, return_exceptions=True)
    return [_outcome(future) for future in futures]


async def _load_into(loader: DataLoader[Any, Any], missing: dict[Any, asyncio.Future[Any]]) -> None:
    """One call of the loader's batch function; its outcome goes to the futures as DataLoader would set them."""
    try:
        values = list(await loader.load_fn(list(missing)))
        if len(values) != len(missing):
            raise WrongNumberOfResultsReturned(expected=len(missing), received=len(values))
    except Exception as error:
        values = [error] * len(missing)
    for future, value in zip(missing.values(), values, strict=False):
        if future.done():
            continue
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)


def _outcome(future: asyncio.Future[Any]) -> Any:
    if future.cancelled():
        return asyncio.CancelledError()
    error = future.exception()  # also marks it retrieved: the field that reads it reports it
    return error if error is not None else future.result()


async def prefetch_below(info: strawberry.Info, rows: Sequence[Any], type_name: str, *, connection: bool) -> None:
    """`prefetch` for the objects a root field returns (a connection of them, or one)."""
    from runplane.schema.context import loaders

    selections = [s for field in info.selected_fields for s in field.selections]
    await prefetch(loaders(info), rows, type_name, _nodes(selections) if connection else selections)


def _fields(selections: Iterable[Selection], type_name: str | None) -> Iterable[SelectedField]:
    """The fields selected on a `type_name` object (None: on whatever object), through fragments."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif type_name is None or selection.type_condition in (None, type_name, "Node"):
            yield from _fields(selection.selections, type_name)


def _nodes(selections: Iterable[Selection]) -> list[Selection]:
    """The selections on the nodes of a connection: `edges { node { ... } }` and `nodes { ... }`."""
    found: list[Selection] = []
    for field in _fields(selections, None):
        if field.name == "nodes":
            found.extend(field.selections)
        elif field.name == "edges":
            found.extend(s for edge in _fields(field.selections, None) if edge.name == "node" for s in edge.selections)
    return found
