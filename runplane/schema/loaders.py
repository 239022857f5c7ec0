"""DataLoaders, named <Result>By<Key>Loader, made fresh for every operation (see schema/context.py)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from strawberry.dataloader import DataLoader

from runplane.models import Message, Project, Thread
from runplane.resolvers import agent_runs as run_ops
from runplane.resolvers import projects as project_ops
from runplane.resolvers import threads as thread_ops
from runplane.resolvers.context import RequestContext

T = TypeVar("T")
ChildKey = tuple[uuid.UUID, int]  # (parent id, first)


def first_children_loader(
    fetch: Callable[[RequestContext, list[uuid.UUID], int], Awaitable[list[list[T]]]], ctx: RequestContext
) -> DataLoader[ChildKey, list[T]]:
    """Keys are (parent, first). Parents asking for the same `first` share one windowed query."""

    async def batch(keys: Sequence[ChildKey]) -> list[list[T]]:
        by_limit: dict[int, list[uuid.UUID]] = defaultdict(list)
        for parent_id, first in keys:
            by_limit[first].append(parent_id)
        found: dict[ChildKey, list[T]] = {}
        for first, parent_ids in by_limit.items():
            for parent_id, rows in zip(parent_ids, await fetch(ctx, parent_ids, first)):
                found[(parent_id, first)] = rows
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
        # Ask for first+1 rows so the connection knows whether there is a next page.
        self.ThreadsByProjectLoader = first_children_loader(thread_ops.first_threads_by_project, ctx)
        self.MessagesByThreadLoader = first_children_loader(thread_ops.first_messages_by_thread, ctx)
        self.RunsByThreadLoader = first_children_loader(run_ops.first_runs_by_thread, ctx)
        self.LastEventsByRunLoader = first_children_loader(run_ops.last_events_by_run, ctx)
        # Later capabilities register their loaders here by name.
        self.extra: dict[str, DataLoader] = {}  # type: ignore[type-arg]
