"""Closed sets of values stored in string columns or computed by resolvers, as StrEnums.

Members are `str`s: code may keep comparing and storing plain strings. The GraphQL schema exposes each
as an enum whose value names ARE these strings (schema/enums.py), so the wire shows what REST shows.
Sets fed by outside systems (a payment provider's subscription status, a model's provider) stay strings.
"""

from __future__ import annotations

from enum import StrEnum


class AppType(StrEnum):
    """What a project builds: Cheatcode's web app previews a mobile (Expo) project through its Expo URL."""

    WEB = "web"
    MOBILE = "mobile"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class SandboxStatus(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"  # by the idle reaper; ensureSandbox wakes it


class SessionStatus(StrEnum):
    RUNNING = "running"
    EXITED = "exited"
    KILLED = "killed"


class EmailStatus(StrEnum):
    """A transactional email's delivery row: the row is the send's lock while it is `sending`."""

    SENDING = "sending"
    SENT = "sent"


class DeploymentStatus(StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    READY = "ready"
    ERROR = "error"
    CANCELED = "canceled"


class DeploymentProvider(StrEnum):
    LOCAL = "local"
    VERCEL = "vercel"


class PaymentProvider(StrEnum):
    POLAR = "polar"
    STRIPE = "stripe"


class QuotaLimit(StrEnum):
    PROJECTS = "projects"
    DEPLOYMENTS = "deployments"
    TOKENS = "tokens"


class UpgradeStatus(StrEnum):
    UPDATED = "updated"
    CHECKOUT_REQUIRED = "checkout_required"
    CANCEL_SCHEDULED = "cancel_scheduled"
    CANCEL_REVERTED = "cancel_reverted"


class KeyTestStatus(StrEnum):
    OK = "ok"
    INVALID = "invalid"


class KeySource(StrEnum):
    STORED = "stored"
    PROVIDED = "provided"


class TokenType(StrEnum):
    BEARER = "bearer"
