"""Error codes are one closed enum: every DomainError subclass names a member, every member is some class's code,
and details are typed attributes whose wire form (ISO-8601 for times) is made only at the edge."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from graphql import GraphQLEnumType, GraphQLInterfaceType, GraphQLNonNull, GraphQLObjectType

import runplane.deployments.base
import runplane.resolvers.email
import runplane.resolvers.integrations
import runplane.resolvers.sandboxes
import runplane.sandboxes.errors  # noqa: F401  (imported for their DomainError subclasses)
from runplane.errors import DomainError, ErrorCode, InvalidInput, QuotaExceeded
from runplane.schema import build_schema
from runplane.schema.errors import InputError, error_result


def subclasses(cls: type[DomainError]) -> set[type[DomainError]]:
    found = set(cls.__subclasses__())
    return found.union(*(subclasses(c) for c in found))


def test_the_enum_is_exactly_the_codes_of_the_classes() -> None:
    classes = subclasses(DomainError) | {DomainError}
    assert {c.code for c in classes if c.__module__.startswith("runplane.")} == set(ErrorCode)
    assert all(isinstance(c.code, ErrorCode) for c in classes)


def test_a_class_with_an_unknown_code_fails_at_definition() -> None:
    with pytest.raises(TypeError, match="ErrorCode"):

        class Invented(DomainError):
            code = "INVENTED"  # type: ignore[assignment]


def test_quota_facts_are_typed_and_iso_only_on_the_wire() -> None:
    end = datetime(2030, 1, 31, 12, 0, tzinfo=UTC)
    exc = QuotaExceeded("used up", plan="free", limit="tokens", used=10, allowed=10, period_end=end, runs_in_flight=0)
    assert exc.period_end is end and exc.used == 10 and exc.code == "QUOTA_EXCEEDED"
    assert exc.details()["period_end"] == "2030-01-31T12:00:00Z" and exc.details()["runs_in_flight"] == 0
    typed = error_result(exc)
    assert typed.period_end == end and typed.limit == "tokens" and typed.allowed == 10  # type: ignore[attr-defined]
    assert QuotaExceeded("bare").details() == {}  # facts left out are not sent as nulls


def test_graphql_error_codes_are_the_enum_with_the_strings_rest_sends() -> None:
    schema = build_schema()._schema
    enum = schema.get_type("ErrorCode")
    assert isinstance(enum, GraphQLEnumType) and set(enum.values) == {code.value for code in ErrorCode}
    for name in ("UserError", "NotFoundError", "InputError", "QuotaExceededError", "RateLimitedError"):
        typed = schema.get_type(name)
        assert isinstance(typed, (GraphQLInterfaceType, GraphQLObjectType)), name
        code = typed.fields["code"].type
        assert isinstance(code, GraphQLNonNull) and code.of_type is enum, name


def test_an_input_error_names_its_field_as_a_typed_attribute() -> None:
    exc = InvalidInput("title must be a string", field="title")
    assert exc.field == "title" and exc.details() == {"field": "title"}
    typed = error_result(exc)
    assert isinstance(typed, InputError) and typed.field == "title" and typed.code is ErrorCode.INVALID_INPUT
    assert InvalidInput("bare").details() == {} and InvalidInput("bare").field is None
