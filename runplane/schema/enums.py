"""GraphQL enums over the domain's StrEnums (one Python class each, shared with resolvers and REST).

Value names are the values themselves (`queued`, `tool_call`): GraphQL allows lower-case enum values, and
this way a GraphQL response carries the very strings REST carries and stored rows hold, so clients written
against the strings keep working while codegen gets closed unions. Resolvers may return plain strings:
graphql-core serializes an enum by value.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

import strawberry

from runplane.errors import ErrorCode
from runplane.events.types import RunEventType
from runplane.models.choices import (
    AppType,
    DeploymentProvider,
    DeploymentStatus,
    KeySource,
    KeyTestStatus,
    MessageRole,
    PaymentProvider,
    QuotaLimit,
    SandboxStatus,
    SessionStatus,
    TokenType,
    UpgradeStatus,
)
from runplane.statuses import RunStatus

E = TypeVar("E", bound=type[StrEnum])


def _enum(cls: E, description: str) -> E:
    return strawberry.enum(cls, description=description, graphql_name_from="value")


_enum(RunStatus, "A run's status: queued, running or paused while active; completed, failed or stopped when it ended.")
_enum(RunEventType, "What a run event carries (RunEvent.data gives it typed).")
_enum(AppType, "What a project builds: a web app, or a mobile (Expo) app.")
_enum(MessageRole, "Who wrote a message of a thread.")
_enum(SandboxStatus, "active, or stopped by the idle reaper (ensureSandbox wakes it).")
_enum(SessionStatus, "A sandbox session: running, or ended (exited by itself, or killed).")
_enum(DeploymentStatus, "Where a deployment is; ready, error and canceled are final.")
_enum(DeploymentProvider, "Where deployments are published.")
_enum(PaymentProvider, "The payment providers of checkouts and subscriptions.")
_enum(QuotaLimit, "Which plan limit a QuotaExceededError is about.")
_enum(UpgradeStatus, "What upgradePlan did.")
_enum(KeyTestStatus, "The outcome of checking a model-provider key.")
_enum(KeySource, "Which key was checked: the stored one or one given with the request.")
_enum(TokenType, "How to send the access token (Authorization: Bearer).")
_enum(ErrorCode, "A typed error's machine code: the same string as the `code` of the REST error body.")

__all__ = [
    "AppType",
    "DeploymentProvider",
    "DeploymentStatus",
    "ErrorCode",
    "KeySource",
    "KeyTestStatus",
    "MessageRole",
    "PaymentProvider",
    "QuotaLimit",
    "RunEventType",
    "RunStatus",
    "SandboxStatus",
    "SessionStatus",
    "TokenType",
    "UpgradeStatus",
]
