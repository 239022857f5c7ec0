"""The GraphQL schema: Query, Mutation and Subscription are composed from per-aggregate mixins."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, MaxTokensLimiter, ParserCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from runplane.config import Settings
from runplane.schema.agent_runs import AgentRunMutations, AgentRunQueries, AgentRunSubscriptions
from runplane.schema.auth import AuthMutations, AuthQueries
from runplane.schema.billing import BillingMutations, BillingQueries
from runplane.schema.context import PerOperationLoaders
from runplane.schema.deployments import DeploymentMutations, DeploymentQueries
from runplane.schema.errors import ERROR_TYPES, DomainErrors, shape_errors
from runplane.schema.limits import LimitedValidation, Limits
from runplane.schema.nodes import NodeQueries
from runplane.schema.projects import ProjectMutations, ProjectQueries
from runplane.schema.sandboxes import SandboxMutations, SandboxQueries, SandboxSubscriptions
from runplane.schema.scalars import SCALAR_OVERRIDES
from runplane.schema.threads import ThreadMutations, ThreadQueries


@strawberry.type
class Query(
    NodeQueries,
    AuthQueries,
    ProjectQueries,
    ThreadQueries,
    AgentRunQueries,
    BillingQueries,
    SandboxQueries,
    DeploymentQueries,
):
    pass


@strawberry.type
class Mutation(
    AuthMutations,
    ProjectMutations,
    ThreadMutations,
    AgentRunMutations,
    BillingMutations,
    SandboxMutations,
    DeploymentMutations,
):
    pass


@strawberry.type
class Subscription(AgentRunSubscriptions, SandboxSubscriptions):
    pass


class RunplaneSchema(strawberry.Schema):
    """Errors are shaped (and unexpected ones logged with the request id) in one place: schema/errors.py."""

    async def execute(  # Strawberry's signature, positional arguments included
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # A subscription only makes sense as a stream (WebSocket, SSE, multipart: those call subscribe/stream).
        # Strawberry's HTTP view allows it here for a plain POST too, and then runs it as a query: a 500.
        if allowed_operation_types is not None:
            allowed_operation_types = set(allowed_operation_types) - {OperationType.SUBSCRIPTION}
        result = await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )
        # DomainErrors has shaped what went through on_operation; parse errors raised inside ParserCache's
        # hook (and exceptions of extensions) come back after it, unshaped: shaping twice is harmless.
        if result.errors:
            request_id = getattr(getattr(context_value, "ctx", None), "request_id", "-")
            result.errors = shape_errors(result.errors, request_id)
        return result

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Strawberry logs every error with a traceback; NOT_FOUND and validation errors are not server faults."""


def compiled_executor() -> type[Any] | None:
    """The compiled executor, or None (graphql-core's own) when the graphql-core or Strawberry internals it
    builds on moved in an installed release: slower queries, never a server that cannot start."""
    try:
        module = importlib.import_module("runplane.schema.compiled")
    except (ImportError, AttributeError, TypeError) as error:
        logging.getLogger("runplane.graphql").warning("compiled queries are off, graphql-core executes: %r", error)
        return None
    executor: type[Any] = module.CompiledExecutor
    return executor


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    # Extensions are factories (one instance per operation: instances would be shared by concurrent operations).
    limits = Limits.from_settings(settings)
    extensions: list[Any] = [
        # Cheap refusals first: the document's length before it is lexed, its token count while it is parsed,
        # then depth, aliases, directives, selections, duplicated fields and variables before graphql-core
        # validates it (LimitedValidation also caches that validation, as ValidationCache does).
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: LimitedValidation(limits, maxsize=512),
        lambda: ParserCache(maxsize=512),
        DomainErrors,
        PerOperationLoaders,
    ]
    if not settings.graphql_introspection:
        extensions.append(DisableIntrospection)
    return RunplaneSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=list(ERROR_TYPES),
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True),
        scalar_overrides=SCALAR_OVERRIDES,
        # Queries try a plan compiled per document first and fall back to graphql-core (schema/compiled.py).
        # The executor class sits inside Strawberry's execution: parse, validation, limits, per-operation
        # loaders and error shaping run around it unchanged.
        execution_context_class=compiled_executor() if settings.graphql_compiled_queries else None,
    )
