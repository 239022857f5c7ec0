"""Domain errors on the GraphQL side: typed results for mutations, `extensions.code` for queries,
and masking of everything unexpected (logged with the request id)."""

from __future__ import annotations

import functools
import logging
import typing
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.types import StreamExecutionResult

from runplane import errors as domain
from runplane.db_errors import database_unavailable, describe
from runplane.models.choices import QuotaLimit
from runplane.schema.enums import ErrorCode

log = logging.getLogger("runplane.graphql")


@strawberry.interface(
    name="UserError",
    description="Every typed error result has a machine code and a message (not `Error`: TypeScript has one).",
)
class Error:
    code: ErrorCode
    message: str


@strawberry.type
class InputError(Error):
    field: str | None = None


@strawberry.type
class NotFoundError(Error):
    pass


@strawberry.type
class ConflictError(Error):
    pass


@strawberry.type
class ForbiddenError(Error):
    pass


@strawberry.type(description="A plan limit or the token quota is reached (HTTP 402 in REST).")
class QuotaExceededError(Error):
    plan: str | None = strawberry.field(default=None, description="The caller's plan id.")
    limit: QuotaLimit | None = strawberry.field(default=None, description="Which limit was reached.")
    used: int | None = strawberry.field(default=None, description="How many the caller has (tokens: used this period).")
    allowed: int | None = strawberry.field(default=None, description="How many the plan allows.")
    period_end: datetime | None = strawberry.field(default=None, description="Token quota: when the period renews.")


@strawberry.type
class RateLimitedError(Error):
    retry_after: int


ERROR_TYPES = (InputError, NotFoundError, ConflictError, ForbiddenError, QuotaExceededError, RateLimitedError)


def error_result(exc: domain.DomainError) -> Error:
    """The typed result for a domain error raised inside a mutation. Authentication stays a top-level error."""
    if isinstance(exc, domain.Unauthenticated):
        raise exc
    if isinstance(exc, domain.InvalidInput):
        return InputError(code=exc.code, message=exc.message, field=exc.field)
    if isinstance(exc, (domain.BadRequest, domain.PayloadTooLarge)):
        return InputError(code=exc.code, message=exc.message)
    if isinstance(exc, domain.NotFound):
        return NotFoundError(code=exc.code, message=exc.message)
    if isinstance(exc, domain.Conflict):
        return ConflictError(code=exc.code, message=exc.message)
    if isinstance(exc, domain.QuotaExceeded):
        return _quota_error(exc)
    if isinstance(exc, domain.RateLimited):
        return RateLimitedError(code=exc.code, message=exc.message, retry_after=exc.retry_after)
    if isinstance(exc, domain.Forbidden):
        return ForbiddenError(code=exc.code, message=exc.message)
    raise exc


Resolver = TypeVar("Resolver", bound=Callable[..., Awaitable[Any]])


def typed_errors(resolver: Resolver) -> Resolver:
    """For mutations (under @strawberry.mutation): a DomainError the body raises becomes the typed error of the
    field's result union. One the union has no member for (a database outage, say) stays a top-level error
    with its `extensions.code`, rather than a union type error that would be masked as a 500. An anonymous
    caller is told to authenticate, not that an object is missing: it cannot own anything."""

    @functools.wraps(resolver)
    async def resolve(*args: Any, **kwargs: Any) -> Any:
        try:
            return await resolver(*args, **kwargs)
        except domain.NotFound as exc:
            if _is_anonymous(args, kwargs):
                raise domain.Unauthenticated("Authentication required") from exc
            return _typed_or_raise(resolver, exc)
        except domain.DomainError as exc:
            return _typed_or_raise(resolver, exc)

    # functools.wraps keeps the resolver's signature (Strawberry reads it); mypy cannot see that through _Wrapped.
    return typing.cast(Resolver, resolve)


def _typed_or_raise(resolver: Callable[..., Any], exc: domain.DomainError) -> Error:
    typed = error_result(exc)
    if isinstance(typed, _union_members(resolver)):
        return typed
    raise exc


@functools.cache
def _union_members(resolver: Callable[..., Any]) -> tuple[type, ...]:
    """The classes of `Annotated[A | B | ..., strawberry.union(...)]`, the resolver's return annotation."""
    hint = typing.get_type_hints(resolver, include_extras=True)["return"]
    union = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
    return typing.get_args(union) or (union,)


def _is_anonymous(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    info = next((value for value in (*args, *kwargs.values()) if isinstance(value, strawberry.Info)), None)
    return info is not None and info.context.ctx.principal is None


def _quota_error(exc: domain.QuotaExceeded) -> QuotaExceededError:
    return QuotaExceededError(
        code=exc.code,
        message=exc.message,
        plan=exc.plan,
        limit=QuotaLimit(exc.limit) if exc.limit else None,
        used=_int(exc.used),
        allowed=_int(exc.allowed),
        period_end=exc.period_end,
    )


def _int(value: object) -> int | None:
    """GraphQL Int is 32-bit: a larger count is reported as its ceiling rather than failing the result."""
    return min(value, 2**31 - 1) if isinstance(value, int) and not isinstance(value, bool) else None


class DomainErrors(SchemaExtension):
    """Gives domain errors their `extensions.code`; masks anything else as INTERNAL_SERVER_ERROR."""

    def on_operation(self) -> Iterator[None]:
        yield
        self._shape(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Subscriptions (and operations over a streaming transport) yield many results: shape each."""
        self._shape(result)
        yield

    def _shape(self, result: Any) -> None:
        if result is not None and getattr(result, "errors", None):
            request_id = getattr(getattr(self.execution_context.context, "ctx", None), "request_id", "-")
            result.errors = shape_errors(result.errors, request_id)


def shape_errors(errors: list[GraphQLError], request_id: str) -> list[GraphQLError]:
    return [_shape_error(error, request_id) for error in errors]


def _shape_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """Every error leaves with `extensions.code`; only domain and GraphQL errors keep their message."""
    original = error.original_error
    code = (error.extensions or {}).get("code")
    if original is None:
        default = "GRAPHQL_PARSE_FAILED" if isinstance(error, GraphQLSyntaxError) else "GRAPHQL_VALIDATION_FAILED"
        return _with_extensions(error, error.message, {"code": code or default})
    if (unavailable := database_unavailable(original)) is not None:  # the database is out of reach: SERVICE_UNAVAILABLE
        log.warning("database unavailable in GraphQL operation (request_id=%s): %s", request_id, describe(original))
        original = unavailable
    if isinstance(original, domain.DomainError):
        extra = {k: v for k, v in original.details().items() if isinstance(v, (str, int, float, bool))}
        return _with_extensions(error, original.message, {"code": original.code, **extra})
    if isinstance(original, GraphQLError):
        # graphql-core's own errors nested in another: a variable value that does not coerce to its type.
        return _with_extensions(
            error, error.message, {"code": code or (original.extensions or {}).get("code") or "INVALID_INPUT"}
        )
    log.error("unexpected error in GraphQL operation (request_id=%s)", request_id, exc_info=original)
    return _with_extensions(error, "Internal server error", {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id})


def formatted_domain_error(exc: domain.DomainError) -> dict[str, Any]:
    """A domain error raised outside execution (a refused request, a refused WebSocket operation), shaped as the
    errors inside it are: its message, `extensions.code` and its scalar details (`retry_after`...)."""
    extra = {k: v for k, v in exc.details().items() if isinstance(v, (str, int, float, bool))}
    return dict(GraphQLError(exc.message, extensions={"code": exc.code, **extra}).formatted)


def _with_extensions(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={**(error.extensions or {}), **extensions},
    )
