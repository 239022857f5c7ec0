"""Domain errors raised by resolvers; every transport maps them by `code` and `status`.

`ErrorCode` is the closed list of codes: every DomainError subclass (here, in sandboxes/errors.py, deployments/,
resolvers/) names one, and a subclass naming a code outside it fails at import. Details travel as typed attributes
and in `extra`; `details()` is their JSON form for the wire (a datetime becomes ISO-8601 there, and only there)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, ClassVar

from runplane.clock import iso


class ErrorCode(enum.StrEnum):
    ERROR = "ERROR"
    INVALID_INPUT = "INVALID_INPUT"
    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    RATE_LIMITED = "RATE_LIMITED"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    SANDBOX_ERROR = "SANDBOX_ERROR"
    SANDBOX_PATH_INVALID = "SANDBOX_PATH_INVALID"
    SANDBOX_INPUT_INVALID = "SANDBOX_INPUT_INVALID"
    SANDBOX_NOT_FOUND = "SANDBOX_NOT_FOUND"
    SANDBOX_CONFLICT = "SANDBOX_CONFLICT"
    SANDBOX_LIMIT = "SANDBOX_LIMIT"
    SANDBOX_ISOLATION_UNAVAILABLE = "SANDBOX_ISOLATION_UNAVAILABLE"
    PREVIEW_UNAVAILABLE = "PREVIEW_UNAVAILABLE"
    COMPOSIO_ERROR = "COMPOSIO_ERROR"
    EMAIL_DELIVERY_FAILED = "EMAIL_DELIVERY_FAILED"
    DEPLOY_PROVIDER_ERROR = "DEPLOY_PROVIDER_ERROR"


class DomainError(Exception):
    code: ClassVar[ErrorCode] = ErrorCode.ERROR
    status: ClassVar[int] = 400

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(cls.code, ErrorCode):
            raise TypeError(f"{cls.__name__}.code must be an ErrorCode member, not {cls.code!r}")

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def details(self) -> dict[str, Any]:
        """`extra` as the wire carries it: datetimes as ISO-8601 (UTC, `Z`)."""
        return {key: iso(value) if isinstance(value, datetime) else value for key, value in self.extra.items()}


class InvalidInput(DomainError):
    """A value the caller sent is wrong; `field` names it (GraphQL's InputError.field, the REST body's `field`)."""

    code = ErrorCode.INVALID_INPUT
    status = 422

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        if field is not None:
            extra["field"] = field
        super().__init__(message, **extra)
        self.field = field


class BadRequest(DomainError):
    code = ErrorCode.BAD_REQUEST
    status = 400


class Unauthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED
    status = 401


class Forbidden(DomainError):
    """Missing ability or admin key. Never used for another user's object: that is NotFound."""

    code = ErrorCode.FORBIDDEN
    status = 403


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND
    status = 404


class Conflict(DomainError):
    code = ErrorCode.CONFLICT
    status = 409


class PayloadTooLarge(DomainError):
    code = ErrorCode.PAYLOAD_TOO_LARGE
    status = 413


class QuotaExceeded(DomainError):
    """A plan limit (`limit`: projects, deployments) or the period's token quota (`limit="tokens"`) is reached."""

    code = ErrorCode.QUOTA_EXCEEDED
    status = 402

    def __init__(
        self,
        message: str,
        *,
        plan: str | None = None,
        limit: str | None = None,
        used: int | None = None,
        allowed: int | None = None,
        period_end: datetime | None = None,
        **extra: Any,
    ) -> None:
        facts = dict(plan=plan, limit=limit, used=used, allowed=allowed, period_end=period_end)
        super().__init__(message, **{k: v for k, v in facts.items() if v is not None}, **extra)
        self.plan = plan
        self.limit = limit
        self.used = used
        self.allowed = allowed
        self.period_end = period_end  # token quota: when the period renews


class RateLimited(DomainError):
    code = ErrorCode.RATE_LIMITED
    status = 429

    def __init__(self, message: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(message, retry_after=retry_after, **extra)
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    """A dependency is down or not configured. `retry_after` (seconds) when trying again soon may help."""

    code = ErrorCode.SERVICE_UNAVAILABLE
    status = 503

    def __init__(self, message: str, *, retry_after: int | None = None, **extra: Any) -> None:
        if retry_after is not None:
            extra["retry_after"] = retry_after
        super().__init__(message, **extra)
        self.retry_after = retry_after
