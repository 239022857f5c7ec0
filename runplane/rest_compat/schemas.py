"""JSON Schemas of REST responses, used only for the OpenAPI document (requests are pydantic models:
runplane/rest_compat/bodies.py)."""

from __future__ import annotations

from typing import Any


def obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
NULLABLE_STR: dict[str, Any] = {"type": ["string", "null"]}
STR_LIST: dict[str, Any] = {"type": "array", "items": STR}

ERROR = obj(["detail"], detail=STR, message=STR, code=STR)
TOKENS = obj(
    ["access_token", "refresh_token", "token_type", "expires_in"],
    access_token=STR,
    refresh_token=STR,
    token_type={"type": "string", "enum": ["bearer"]},
    expires_in=INT,
)
USER = obj(
    ["id", "email", "display_name", "is_admin", "created_at", "abilities"],
    id=UUID,
    email=NULLABLE_STR,
    display_name=STR,
    is_admin=BOOL,
    created_at=TIME,
    abilities=STR_LIST,
)
SESSION = obj(
    ["session_id", "abilities", "created_at", "expires_at", "current"],
    session_id=UUID,
    abilities=STR_LIST,
    user_agent=STR,
    ip_address=STR,
    created_at=TIME,
    last_used_at=TIME,
    expires_at=TIME,
    current=BOOL,
)
SESSION_LIST = obj(["sessions"], sessions={"type": "array", "items": SESSION})
PROJECT = obj(
    ["project_id", "id", "name", "description", "account_id", "created_at", "updated_at", "sandbox", "app_type"],
    project_id=UUID,
    id=UUID,
    name=STR,
    description=STR,
    account_id=UUID,
    created_at=TIME,
    updated_at=TIME,
    sandbox={
        "type": "object",
        "description": "The project's sandbox ({} until it has one)",
        "properties": {"id": UUID, "dev_server_url": STR, "api_server_url": STR, "token": NULLABLE_STR},
    },
    is_public=BOOL,
    app_type={"type": "string", "enum": ["web", "mobile"]},
)
PROJECT_LIST = obj(["projects", "next_cursor"], projects={"type": "array", "items": PROJECT}, next_cursor=NULLABLE_STR)
THREAD = obj(
    ["thread_id", "project_id", "account_id", "title", "metadata", "created_at", "updated_at"],
    thread_id=UUID,
    project_id=UUID,
    account_id=UUID,
    title=STR,
    metadata={"type": "object", "properties": {"name": STR}},
    is_public=BOOL,
    created_at=TIME,
    updated_at=TIME,
)
MESSAGE = obj(
    ["message_id", "thread_id", "type", "role", "content", "text", "metadata", "created_at"],
    message_id=UUID,
    thread_id=UUID,
    type={"type": "string", "enum": ["user", "assistant", "system", "tool"]},
    role=STR,
    is_llm_message=BOOL,
    content={**STR, "description": 'JSON text: {"role": ..., "content": ...} (as the original backend stored it)'},
    text=STR,
    metadata={**STR, "description": "JSON text"},
    created_at=TIME,
    updated_at=TIME,
)
MESSAGE_LIST = obj(["messages", "next_cursor"], messages={"type": "array", "items": MESSAGE}, next_cursor=NULLABLE_STR)
THREAD_LIST = obj(["threads", "next_cursor"], threads={"type": "array", "items": THREAD}, next_cursor=NULLABLE_STR)
HEALTH = obj(["status", "timestamp", "instance_id"], status=STR, timestamp=TIME, instance_id=STR)
DEEP_HEALTH = obj(
    ["status", "timestamp", "instance_id", "components"],
    status=STR,
    timestamp=TIME,
    instance_id=STR,
    components={"type": "object"},
)


AGENT_STARTED = obj(["agent_run_id", "status"], agent_run_id=UUID, status=STR)
AGENT_STATUS = obj(
    ["agent_run_id", "status"],
    agent_run_id=UUID,
    status=STR,
    error=NULLABLE_STR,
    message=STR,
    stop_requested=BOOL,
    db_status=STR,
    completed_at={"type": ["string", "null"]},
    timestamp={"type": ["string", "null"]},
)
USAGE = obj(
    ["prompt_tokens", "completion_tokens", "total_tokens"], prompt_tokens=INT, completion_tokens=INT, total_tokens=INT
)
AGENT_RUN = obj(
    ["id", "agent_run_id", "run_id", "thread_id", "project_id", "status", "run_status", "model", "created_at"],
    id=UUID,
    agent_run_id=UUID,
    run_id=UUID,
    threadId=UUID,
    startedAt={"type": ["string", "null"]},
    completedAt={"type": ["string", "null"]},
    updated_at={"type": ["string", "null"]},
    run_status={
        **STR,
        "description": (
            "The run's own status (`status` reads `running` for any active run when the dialect is cheatcode)"
        ),
    },
    thread_id=UUID,
    project_id=UUID,
    status=STR,
    model=STR,
    prompt=STR,
    error=NULLABLE_STR,
    created_at=TIME,
    started_at={"type": ["string", "null"]},
    completed_at={"type": ["string", "null"]},
    usage=USAGE,
    event_count=INT,
)
AGENT_RUN_LIST = obj(
    ["agent_runs", "next_cursor"], agent_runs={"type": "array", "items": AGENT_RUN}, next_cursor=NULLABLE_STR
)
RUN_EVENT = obj(
    ["type", "sequence"],
    type={"type": "string", "enum": ["content", "tool_call", "tool_result", "status", "error"]},
    sequence=INT,
)
EVENT_LIST = obj(
    ["events", "last_sequence"],
    events={"type": "array", "items": RUN_EVENT},
    last_sequence={"type": ["integer", "null"]},
)


def sse_event(description: str, data: dict[str, Any]) -> dict[str, Any]:
    """A text/event-stream response: in OpenAPI 3.1 its `schema` describes one event (`data` is JSON text).
    `x-media-type` tells runplane/rest_compat/openapi.py which media type to document it under."""
    return {
        "type": "object",
        "description": description,
        "x-media-type": "text/event-stream",
        "properties": {
            "id": STR,
            "event": STR,
            "retry": INT,
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        },
    }


# ?dialect=cheatcode: the original's message rows, then its closing status frames (rest_compat/run_messages.py).
MESSAGE_FRAME = obj(
    ["thread_id", "type", "content", "metadata", "sequence"],
    message_id=NULLABLE_STR,
    thread_id=UUID,
    type={"type": "string", "enum": ["assistant", "tool", "status"]},
    content={**STR, "description": "JSON text"},
    metadata={**STR, "description": "JSON text"},
    sequence=INT,
)
CLOSING_FRAME = obj(["type", "status"], type={"const": "status"}, status=STR, message=STR)
EVENT_STREAM = sse_event(
    "SSE: `id: <seq>`, `event: message`, `data: <RunEvent JSON>` (the original's message rows with ?dialect=cheatcode);"
    " `: ping` every 15 s",
    {"anyOf": [RUN_EVENT, MESSAGE_FRAME, CLOSING_FRAME]},
)
AGENT_INITIATED = obj(
    ["project_id", "thread_id", "agent_run_id", "status"],
    project_id=UUID,
    thread_id=UUID,
    agent_run_id=UUID,
    status=STR,
)
MODEL = obj(
    ["id", "name", "provider", "openrouter_id", "description", "max_tokens"],
    id=STR,
    name=STR,
    provider=STR,
    context_length={"type": ["integer", "null"]},
    default=BOOL,
    openrouter_id=STR,
    description=STR,
    max_tokens=INT,
    context_window={"type": ["integer", "null"]},
    cost_input_per_1k={"type": "number"},
    cost_output_per_1k={"type": "number"},
)
MODEL_LIST = obj(["models", "default_model_id"], models={"type": "array", "items": MODEL}, default_model_id=STR)
