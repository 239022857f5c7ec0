"""@typed_errors: a mutation's DomainError becomes the typed member of its result union, or a top-level error
with its code when the union has none (never a masked 500), and anonymous callers are asked to authenticate."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
import strawberry

from runplane import errors as domain
from runplane.schema.errors import ERROR_TYPES, DomainErrors, NotFoundError, typed_errors
from tests.support import UserHandle, gql


@strawberry.type
class Done:
    ok: bool


DoneResult = Annotated[Done | NotFoundError, strawberry.union("DoneResult")]


@strawberry.type
class Query:
    ping: bool = True


@strawberry.type
class Mutation:
    @strawberry.mutation
    @typed_errors
    async def fail_with(self, info: strawberry.Info, code: str) -> DoneResult:
        raise {"not_found": domain.NotFound("No such thing"), "conflict": domain.Conflict("Busy")}[code]


class Context:
    class ctx:  # an authenticated caller
        principal = object()
        request_id = "test"


SCHEMA = strawberry.Schema(query=Query, mutation=Mutation, types=list(ERROR_TYPES), extensions=[DomainErrors])


async def test_an_error_in_the_union_is_the_typed_result() -> None:
    result = await SCHEMA.execute(
        'mutation { failWith(code: "not_found") { __typename ... on NotFoundError { code message } } }',
        context_value=Context(),
    )
    assert result.errors is None
    assert result.data == {"failWith": {"__typename": "NotFoundError", "code": "NOT_FOUND", "message": "No such thing"}}


async def test_an_error_outside_the_union_is_a_top_level_error_with_its_code() -> None:
    result = await SCHEMA.execute('mutation { failWith(code: "conflict") { __typename } }', context_value=Context())
    assert result.data is None and result.errors
    assert result.errors[0].message == "Busy"
    assert result.errors[0].extensions == {"code": "CONFLICT"}


@pytest.mark.parametrize(
    "mutation",
    [
        'deleteSandbox(id: "not-an-id")',
        'deleteProject(id: "UHJvamVjdDpub3QtYS11dWlk")',
        'stopRun(id: "garbage")',
    ],
)
async def test_anonymous_callers_are_asked_to_authenticate_not_told_not_found(
    client: httpx.AsyncClient, mutation: str
) -> None:
    result = await gql(client, f"mutation {{ {mutation} {{ __typename }} }}")
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", result


async def test_signed_in_callers_still_get_not_found(client: httpx.AsyncClient, alice: UserHandle) -> None:
    result = await gql(client, 'mutation { deleteSandbox(id: "not-an-id") { __typename } }', user=alice)
    assert result["data"]["deleteSandbox"]["__typename"] == "NotFoundError", result
