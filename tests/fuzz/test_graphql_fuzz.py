"""schemathesis against the GraphQL schema on a live server: queries and mutations generated from the schema
never get a 5xx, always get a GraphQL response, and every error is a classified one (`extensions.code`),
never a masked crash (INTERNAL_SERVER_ERROR, "Unexpected error")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.core.failures import Failure, ServerError
from schemathesis.graphql import nodes

from tests.fuzz.conftest import FuzzTarget

# The exported SDL (tests/test_schema_export.py keeps it equal to the code), so pytest collects one test per field;
# `target` checks the live server introspects to the same fields.
SDL = Path(__file__).resolve().parents[2] / "schema.graphql"
schema = schemathesis.graphql.from_path(SDL)
schemathesis.graphql.scalar("Date", st.dates().map(lambda d: nodes.String(d.isoformat())))
schemathesis.graphql.scalar("DateTime", st.datetimes().map(lambda d: nodes.String(d.isoformat() + "Z")))
schemathesis.graphql.scalar("JSON", st.sampled_from([nodes.String("x"), nodes.Int(1), nodes.Boolean(True), nodes.Null]))

FUZZ = hypothesis.settings(
    max_examples=8,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
UNAUTHENTICATED = hypothesis.settings(FUZZ, max_examples=2)
MASKED = {"INTERNAL_SERVER_ERROR"}


class GraphQLContractBroken(Failure):
    code = "RUNPLANE_GRAPHQL"
    kind_title = "GraphQL response breaks runplane's error contract"

    @property
    def _unique_key(self) -> str:
        return self.message


def graphql_contract(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """No 5xx; a JSON object with `data` and/or `errors`; each error a message with a code that is not a crash."""
    label = case.operation.label
    if response.status_code >= 500:
        raise ServerError(operation=label, status_code=response.status_code)
    try:
        payload = response.json()
    except ValueError:
        raise GraphQLContractBroken(operation=label, title="Not JSON", message=response.text[:300]) from None
    if not isinstance(payload, dict) or not ({"data", "errors"} & payload.keys()):
        raise GraphQLContractBroken(operation=label, title="Not a GraphQL response", message=str(payload)[:300])
    for error in payload.get("errors") or []:
        code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if (
            not isinstance(message, str)
            or not isinstance(code, str)
            or code in MASKED
            or message.startswith("Unexpected error")
        ):
            raise GraphQLContractBroken(operation=label, title="Unclassified or masked error", message=str(error)[:500])


@pytest.fixture(scope="package")
def graphql_target(fuzz_target: FuzzTarget) -> FuzzTarget:
    query = "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"
    served = httpx.post(fuzz_target.base_url + "/graphql", json={"query": query}, timeout=30).json()["data"]["__schema"]
    live = {f"Query.{f['name']}" for f in served["queryType"]["fields"]} | {
        f"Mutation.{f['name']}" for f in served["mutationType"]["fields"]
    }
    fuzzed = {result.ok().label for result in schema.get_all_operations()}
    assert fuzzed == live, "schema.graphql is not the schema served"
    return fuzz_target


def call(case: schemathesis.Case, target: FuzzTarget, headers: dict[str, str] | None) -> None:
    case.call_and_validate(base_url=target.base_url + "/graphql", headers=headers, checks=[graphql_contract])


# logout ends the fuzz user's session (every later call would be refused at the door); the unauthenticated run keeps it.
@schema.exclude(name="Mutation.logout").parametrize()
@FUZZ
def test_graphql_as_a_user(case: schemathesis.Case, graphql_target: FuzzTarget) -> None:
    call(case, graphql_target, graphql_target.user_headers)


@schema.include(
    name_regex=r"\.(resetQuotas|warmModelCache|clearModelCache|billingQuotaReport|userBillingStatus|modelCacheInfo)$"
).parametrize()
@FUZZ
def test_graphql_admin_fields_with_the_api_key(case: schemathesis.Case, graphql_target: FuzzTarget) -> None:
    call(case, graphql_target, graphql_target.admin_headers)


@schema.parametrize()
@UNAUTHENTICATED
def test_graphql_unauthenticated(case: schemathesis.Case, graphql_target: FuzzTarget) -> None:
    call(case, graphql_target, None)
