"""Conventions of the schema that frontends rely on, checked on the built schema (no server):
closed sets are enums, every connection pages both ways with a complete pageInfo."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)

from runplane.schema import build_schema

# Fields whose names say "one of a few values": each must be an enum, unless listed below with why not.
CLOSED_SET_NAMES = {"status", "role", "provider", "providers", "type", "source", "limit", "tokenType", "lastTestStatus"}
OPEN_SETS = {
    "BillingStatus.status": "the payment provider's subscription status, passed through",
    "BillingSubscription.status": "the payment provider's subscription status, passed through",
    "ModelOption.provider": "the model catalogue's provider names (OpenRouter's list)",
    "OpenrouterKeyStatus.provider": "the model-key provider (openrouter today; more will come)",
    "PaymentMethod.type": "the payment-method table's kinds, data not code",
    "PaymentMethod.providers": "the payment-method table's providers, data not code",
    "CountryPaymentMethods.source": "the name of the request header the country came from",
}
# And these by name, so that a rename cannot hide one.
ENUM_FIELDS = {
    "AgentRun.status": "RunStatus",
    "RunEvent.type": "RunEventType",
    "Message.role": "MessageRole",
    "Sandbox.status": "SandboxStatus",
    "SandboxSession.status": "SessionStatus",
    "SessionOutputChunk.status": "SessionStatus",
    "Deployment.status": "DeploymentStatus",
    "Deployment.provider": "DeploymentProvider",
    "DeploymentEvent.status": "DeploymentStatus",
    "DeployProjectInput.provider": "DeploymentProvider",
    "BillingPlan.providers": "PaymentProvider",
    "BillingSubscription.provider": "PaymentProvider",
    "CheckoutSession.provider": "PaymentProvider",
    "CheckoutInput.provider": "PaymentProvider",
    "QuotaExceededError.limit": "QuotaLimit",
    "UpgradePlanPayload.status": "UpgradeStatus",
    "OpenrouterKeyStatus.lastTestStatus": "KeyTestStatus",
    "OpenrouterKeyTest.status": "KeyTestStatus",
    "OpenrouterKeyTest.source": "KeySource",
    "AuthTokens.tokenType": "TokenType",
}
PAGE_ARGUMENTS = {"first", "after", "last", "before"}


def schema() -> GraphQLSchema:
    return build_schema()._schema


def fields_of(graphql: GraphQLSchema) -> dict[str, GraphQLField]:
    found = {}
    for name, type_ in graphql.type_map.items():
        if not name.startswith("__") and isinstance(
            type_, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)
        ):
            found.update({f"{name}.{field}": definition for field, definition in type_.fields.items()})
    return found  # type: ignore[return-value]


def test_closed_set_fields_are_enums() -> None:
    fields = fields_of(schema())
    strings = sorted(
        coordinate
        for coordinate, field in fields.items()
        if coordinate.split(".")[1] in CLOSED_SET_NAMES
        and get_named_type(field.type).name == "String"
        and coordinate not in OPEN_SETS
    )
    assert strings == [], f"closed-set fields typed String (make them enums, or list them in OPEN_SETS): {strings}"
    for coordinate, enum in ENUM_FIELDS.items():
        named = get_named_type(fields[coordinate].type)
        assert isinstance(named, GraphQLEnumType) and named.name == enum, (coordinate, named)
    assert not set(OPEN_SETS) - set(fields), "OPEN_SETS names a field that no longer exists"


def test_enum_values_are_the_wire_strings() -> None:
    """Enum value names are the strings REST and the rows carry (`tool_call`, `queued`)."""
    for name, type_ in schema().type_map.items():
        if isinstance(type_, GraphQLEnumType) and not name.startswith("__"):
            assert all(value.value == key for key, value in type_.values.items()), name


def test_every_connection_pages_both_ways_with_a_complete_page_info() -> None:
    graphql = schema()
    page_info = graphql.type_map["PageInfo"]
    assert isinstance(page_info, GraphQLObjectType)
    assert {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"} <= set(page_info.fields)
    connections = {name for name in graphql.type_map if name.endswith("Connection")}
    assert {"ProjectConnection", "ThreadConnection", "AgentRunConnection", "MessageConnection"} <= connections
    for coordinate, field in fields_of(graphql).items():
        named = get_named_type(field.type)
        if named.name not in connections:
            continue
        missing = PAGE_ARGUMENTS - set(field.args)
        assert not missing, f"{coordinate} lacks {sorted(missing)}"
        assert get_named_type(field.args["after"].type).name == "String", coordinate
    for name in connections:
        connection = graphql.type_map[name]
        assert isinstance(connection, GraphQLObjectType)
        assert {"edges", "pageInfo"} <= set(connection.fields), name
        edge = get_named_type(connection.fields["edges"].type)
        assert isinstance(edge, GraphQLObjectType) and {"node", "cursor"} <= set(edge.fields), name


def test_root_lookups_by_id_are_nullable() -> None:
    """A NOT_FOUND on a non-null root field would null the whole response, `me` and every sibling with it."""
    graphql = schema()
    assert graphql.query_type is not None
    for name, field in graphql.query_type.fields.items():
        if any(get_named_type(argument.type).name == "ID" for argument in field.args.values()):
            type_ = field.type
            if isinstance(type_, GraphQLNonNull) and isinstance(type_.of_type, GraphQLList):
                type_ = type_.of_type.of_type  # nodes(ids:): a list whose items are null where not found
            assert not isinstance(type_, GraphQLNonNull), f"Query.{name} looks an object up by id: make it nullable"


def test_no_type_shadows_a_typescript_global() -> None:
    """Generated TypeScript names each schema type: `Error`, `Date`, `Object`... would shadow the built-ins."""
    shadowing = {"Error", "Object", "Function", "Promise", "Map", "Set", "Symbol", "Array", "Record"}
    assert not shadowing & set(schema().type_map)


LINTER = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "graphql-schema-linter"
LINT_RULES = ",".join(
    [
        "relay-connection-types-spec",
        "relay-connection-arguments-spec",
        "relay-page-info-spec",
        "types-are-capitalized",
        "fields-are-camel-cased",
        "input-object-values-are-camel-cased",
        "defined-types-are-used",
        "deprecations-have-a-reason",
    ]
)


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    if not LINTER.exists():
        message = "graphql-schema-linter is not installed: run `npm ci`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        [str(LINTER), "--rules", LINT_RULES, str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def test_schema_graphql_is_clean_under_graphql_schema_linter_relay_rules() -> None:
    done = lint(Path(__file__).resolve().parents[1] / "schema.graphql")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linter_catches_a_connection_without_cursors(tmp_path: Path) -> None:
    """The rule has teeth: the same schema with Project.threads taking only first and last fails (the Relay
    rule wants first+after or last+before; the test above wants all four)."""
    sdl = (Path(__file__).resolve().parents[1] / "schema.graphql").read_text()
    whole = "threads(first: Int = null, after: String = null, last: Int = null, before: String = null)"
    broken = sdl.replace(whole, "threads(first: Int = null, last: Int = null)", 1)
    assert broken != sdl
    (tmp_path / "schema.graphql").write_text(broken)
    done = lint(tmp_path / "schema.graphql")
    assert done.returncode != 0 and "relay-connection-arguments-spec" in done.stdout, done.stdout
