"""Request models of the agent routes (runplane/rest_compat/agent_runs.py), bounded by the resolver's limits."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field

from runplane.resolvers import agent_runs as ops
from runplane.rest_compat.bodies import ASCII_DIGITS, Body, Query, TokenQuery, text


class WebAppOptions(Body):
    """Options Cheatcode's web app sends that have no effect here (the agent and its model decide)."""

    enable_thinking: bool | None = None
    reasoning_effort: str | None = None
    stream: bool | None = None
    app_type: Literal["web", "mobile"] | None = None


class AgentStart(WebAppOptions):
    prompt: str | None = text(ops.MAX_PROMPT, description="Default: the thread's last user message")
    model: str | None = text(ops.MAX_MODEL_NAME)
    model_name: str | None = text(ops.MAX_MODEL_NAME)
    idempotency_key: str | None = text(ops.MAX_IDEMPOTENCY_KEY)


class AgentInitiate(WebAppOptions):
    prompt: str = text(ops.MAX_PROMPT, min_length=1, required=True)
    name: str | None = Field(
        None, max_length=ops.MAX_PROJECT_NAME, validation_alias=AliasChoices("name", "project_name")
    )
    model: str | None = text(ops.MAX_MODEL_NAME)
    model_name: str | None = text(ops.MAX_MODEL_NAME)
    idempotency_key: str | None = text(ops.MAX_IDEMPOTENCY_KEY)
    files: list[Any] | None = Field(
        None,
        description="multipart only: images, written to the project's sandbox and named in the prompt",
        json_schema_extra={"items": {"type": "string", "format": "binary"}, "maxItems": ops.MAX_ATTACHMENTS},
    )


# A run event's sequence number: the resolver reads at most 12 digits (resolvers/agent_runs.py _clean_after).
Sequence = Annotated[int, Field(ge=0, lt=10**12), ASCII_DIGITS]


class EventsQuery(Query):
    after: Sequence = 0
    limit: Annotated[int, Field(ge=1, le=ops.EVENTS_PAGE_MAX), ASCII_DIGITS] = ops.EVENTS_PAGE_MAX


class RunStreamQuery(TokenQuery):
    after: Sequence | None = Field(None, description="Resume after this sequence number (or Last-Event-ID)")
