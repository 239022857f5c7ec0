"""Which REST dialect a request gets where runplane's documented shapes and Cheatcode's web app truly conflict.

Only four things differ; everything else is one shape with the fields of both (additions, not forks):
- the run stream (`/agent-run/{id}/stream`): runplane's documented event frames, or the original backend's
  message rows (rest_compat/run_messages.py);
- `GET /projects` and `GET /threads`: `{"projects": [...], "next_cursor"}` objects, or bare arrays;
- a run's `status` on `GET /agent-run/{id}`: `queued`/`paused` as such, or `running` (the web app treats any
  other status as "the run is over" before it even connects to the stream);
- a 402's `detail`: runplane's message string, or the original's `{error, message, credits_remaining, ...}` object.

A client that can say what it wants sends `?dialect=runplane|cheatcode`; one that cannot (the web app, unchanged)
gets the server's default, `RUNPLANE_REST_DIALECT`.
"""

from __future__ import annotations

from pydantic import Field
from starlette.requests import Request

from runplane.config import RestDialect
from runplane.errors import InvalidInput
from runplane.rest_compat.bodies import Query, parse_query

RUNPLANE, CHEATCODE = "runplane", "cheatcode"


class DialectQuery(Query):
    dialect: RestDialect | None = Field(
        None,
        description="runplane (documented shapes) or cheatcode (the original backend's); default RUNPLANE_REST_DIALECT",
    )


def dialect_of(request: Request) -> str:
    chosen = parse_query(request, DialectQuery).dialect
    if chosen is None:
        dialect: str = request.app.state.services.settings.rest_dialect
        return dialect
    return chosen


def is_cheatcode(request: Request) -> bool:
    return dialect_of(request) == CHEATCODE


def speaks_cheatcode(request: Request) -> bool:
    """is_cheatcode for error shaping: an unknown `?dialect=` there falls back to the server's default rather than
    raising a second error while the first is answered."""
    try:
        return is_cheatcode(request)
    except InvalidInput:
        return bool(request.app.state.services.settings.rest_dialect == CHEATCODE)
