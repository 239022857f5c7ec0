"""Sandbox errors. They are domain errors too, so both transports map them without a table."""

from __future__ import annotations

from runplane.errors import (
    Conflict,
    DomainError,
    ErrorCode,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)


class SandboxError(DomainError):
    code = ErrorCode.SANDBOX_ERROR
    status = 500


class SandboxPathError(SandboxError, InvalidInput, ValueError):
    """A user path that is malformed or would leave the workspace."""

    code = ErrorCode.SANDBOX_PATH_INVALID
    status = 422


class SandboxInputError(SandboxError, InvalidInput, ValueError):
    code = ErrorCode.SANDBOX_INPUT_INVALID
    status = 422


class SandboxNotFoundError(SandboxError, NotFound, LookupError):
    """Unknown sandbox, file, session or snapshot."""

    code = ErrorCode.SANDBOX_NOT_FOUND
    status = 404


class SandboxConflictError(SandboxError, Conflict):
    code = ErrorCode.SANDBOX_CONFLICT
    status = 409


class SandboxLimitError(SandboxError, PayloadTooLarge):
    """A size or count limit was hit (file too large, too many sessions)."""

    code = ErrorCode.SANDBOX_LIMIT
    status = 413


class SandboxIsolationError(SandboxError, ServiceUnavailable):
    """Isolation is required (or needed to honour a limit) but bubblewrap is not usable."""

    code = ErrorCode.SANDBOX_ISOLATION_UNAVAILABLE
    status = 503
