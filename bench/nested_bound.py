"""What Strawberry alone costs for bench_nested_query's selection: the same shape (10 projects x 5 threads x
3 runs x 3 last events, connections with edges { node }) over plain in-memory objects, no database, no HTTP.
No resolver code on this stack can make the real query cheaper than this.

(No `from __future__ import annotations` here: Strawberry resolves these module-level annotations.)
"""

import statistics
import time

import strawberry


@strawberry.type
class Event:
    sequence: int
    type: str


@strawberry.type
class Run:
    status: str
    events: strawberry.Private[list[Event]]

    @strawberry.field
    def last_events(self, last: int = 5) -> list[Event]:
        return self.events[-last:]


@strawberry.type
class RunEdge:
    node: Run


@strawberry.type
class RunConnection:
    edges: list[RunEdge]


@strawberry.type
class Thread:
    id: strawberry.ID
    run_list: strawberry.Private[list[Run]]

    @strawberry.field
    def runs(self, first: int = 20) -> RunConnection:
        return RunConnection(edges=[RunEdge(node=r) for r in self.run_list[:first]])


@strawberry.type
class ThreadEdge:
    node: Thread


@strawberry.type
class ThreadConnection:
    edges: list[ThreadEdge]


@strawberry.type
class Project:
    name: str
    thread_list: strawberry.Private[list[Thread]]

    @strawberry.field
    def threads(self, first: int = 20) -> ThreadConnection:
        return ThreadConnection(edges=[ThreadEdge(node=t) for t in self.thread_list[:first]])


@strawberry.type
class ProjectEdge:
    node: Project


@strawberry.type
class ProjectConnection:
    edges: list[ProjectEdge]


def _run() -> Run:
    return Run(status="completed", events=[Event(sequence=k, type="status") for k in range(3)])


PROJECTS = [
    Project(
        name=f"p{p}",
        thread_list=[Thread(id=strawberry.ID(f"t{t}"), run_list=[_run() for _ in range(3)]) for t in range(5)],
    )
    for p in range(10)
]


@strawberry.type
class Query:
    @strawberry.field
    async def projects(self, first: int = 20) -> ProjectConnection:  # async like the real root field
        return ProjectConnection(edges=[ProjectEdge(node=p) for p in PROJECTS[:first]])


SCHEMA = strawberry.Schema(Query)


async def strawberry_bound(query: str, repeat: int = 40) -> float:
    """Median CPU milliseconds of one execution of `query`."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        result = await SCHEMA.execute(query)
        times.append(time.process_time() - started)
        assert result.errors is None, result.errors
    return round(statistics.median(times) * 1000, 2)
