"""The GraphQL schema: Query, Mutation and Subscription are composed from per-aggregate mixins."""

from __future__ import annotations

import strawberry
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from runplane.config import Settings
from runplane.schema.agent_runs import AgentRunMutations, AgentRunQueries, AgentRunSubscriptions
from runplane.schema.auth import AuthMutations, AuthQueries
from runplane.schema.context import PerOperationLoaders
from runplane.schema.errors import ERROR_TYPES, DomainErrors
from runplane.schema.projects import ProjectMutations, ProjectQueries
from runplane.schema.threads import ThreadMutations, ThreadQueries


@strawberry.type
class Query(AuthQueries, ProjectQueries, ThreadQueries, AgentRunQueries):
    pass


@strawberry.type
class Mutation(AuthMutations, ProjectMutations, ThreadMutations, AgentRunMutations):
    pass


@strawberry.type
class Subscription(AgentRunSubscriptions):
    pass


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    extensions: list[object] = [
        # Cheap refusals first: token count is checked while parsing, before any tree is built.
        MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        ParserCache(maxsize=512),
        ValidationCache(maxsize=512),
        QueryDepthLimiter(max_depth=settings.graphql_max_depth),
        MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases),
        DomainErrors,
        PerOperationLoaders,
    ]
    if not settings.graphql_introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=list(ERROR_TYPES),
        extensions=extensions,  # type: ignore[arg-type]
        config=StrawberryConfig(auto_camel_case=True),
    )
