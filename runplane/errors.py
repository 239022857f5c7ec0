"""Domain errors raised by resolvers; every transport maps them by `code` and `status`."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "ERROR"
    status = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class InvalidInput(DomainError):
    code = "INVALID_INPUT"
    status = 422


class BadRequest(DomainError):
    code = "BAD_REQUEST"
    status = 400


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    status = 401


class Forbidden(DomainError):
    """Missing ability or admin key. Never used for another user's object: that is NotFound."""

    code = "FORBIDDEN"
    status = 403


class NotFound(DomainError):
    code = "NOT_FOUND"
    status = 404


class Conflict(DomainError):
    code = "CONFLICT"
    status = 409


class PayloadTooLarge(DomainError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413


class QuotaExceeded(DomainError):
    code = "QUOTA_EXCEEDED"
    status = 402


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    status = 429

    def __init__(self, message: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(message, retry_after=retry_after, **extra)
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    """A dependency is down or not configured. `retry_after` (seconds) when trying again soon may help."""

    code = "SERVICE_UNAVAILABLE"
    status = 503

    def __init__(self, message: str, *, retry_after: int | None = None, **extra: Any) -> None:
        if retry_after is not None:
            extra["retry_after"] = retry_after
        super().__init__(message, **extra)
        self.retry_after = retry_after
