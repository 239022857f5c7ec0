"""The GraphQL twins of the billing routes run the same resolvers."""

from __future__ import annotations

import httpx

from runplane.schema.ids import to_global_id
from tests.billing.conftest import SUCCESS_URL, USER_MODEL_KEY, BillingServer, make_thread, run_to_end
from tests.conftest import ADMIN_API_KEY
from tests.support import ROOMY_PLAN, UserHandle, gql, register_user

STATUS = """{ billingStatus { plan { id tokenAllowance limits { projects deployments } } status canRun quotaExhausted
  tokensUsed tokensLimit tokensRemaining periodStart periodEnd byokKeyConfigured projectsUsed }
  subscription { plan { id } status provider currentPeriodEnd cancelAtPeriodEnd }
  plans { id priceCents purchasable providers } }"""


async def test_status_subscription_plans(client: httpx.AsyncClient, alice: UserHandle) -> None:
    result = await gql(client, STATUS, user=alice)
    assert "errors" not in result, result
    data = result["data"]
    assert (
        data["billingStatus"]["plan"]["id"] == ROOMY_PLAN == "premium"
        and data["billingStatus"]["tokensLimit"] == 20_000_000
    )
    assert data["billingStatus"]["canRun"] is True and data["subscription"]["provider"] is None
    assert [p["id"] for p in data["plans"]] == ["free", "pro", "premium", "byok"]
    anonymous = await gql(client, "{ billingStatus { status } }")
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_usage_history_and_its_validation(client: httpx.AsyncClient, alice: UserHandle) -> None:
    query = "query($s: Date, $e: Date) { usageHistory(startDate: $s, endDate: $e) { startDate endDate days { date runs totalTokens } totals { runs date } } }"
    result = await gql(client, query, {"s": "2024-03-01", "e": "2024-03-03"}, user=alice)
    history = result["data"]["usageHistory"]
    assert [d["date"] for d in history["days"]] == ["2024-03-01", "2024-03-02", "2024-03-03"] and history["totals"][
        "date"
    ] is None
    bad = await gql(client, query, {"s": "2024-03-04", "e": "2024-03-01"}, user=alice)
    assert (
        bad["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
        and bad["errors"][0]["extensions"]["field"] == "start_date"
    )


async def test_openrouter_key_mutations(client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle) -> None:
    set_key = """mutation($k: String!) { setOpenrouterKey(apiKey: $k) {
      __typename ... on OpenrouterKeyStatus { configured hint } ... on InputError { field message } } }"""
    bad = await gql(client, set_key, {"k": "short"}, user=alice)
    assert bad["data"]["setOpenrouterKey"]["__typename"] == "InputError"
    stored = (await gql(client, set_key, {"k": USER_MODEL_KEY}, user=alice))["data"]["setOpenrouterKey"]
    assert stored["configured"] is True and stored["hint"].endswith(USER_MODEL_KEY[-4:])
    status = "{ openrouterKeyStatus { configured hint lastTestStatus } }"
    assert (await gql(client, status, user=bob))["data"]["openrouterKeyStatus"]["configured"] is False
    missing = await gql(
        client, "mutation { testOpenrouterKey { __typename ... on NotFoundError { message } } }", user=bob
    )
    assert missing["data"]["testOpenrouterKey"]["__typename"] == "NotFoundError"
    deleted = await gql(
        client, "mutation { deleteOpenrouterKey { ... on DeleteOpenrouterKeyPayload { deleted } } }", user=alice
    )
    assert deleted["data"]["deleteOpenrouterKey"]["deleted"] is True
    assert (await gql(client, status, user=alice))["data"]["openrouterKeyStatus"]["configured"] is False


async def test_payment_method_queries(client: httpx.AsyncClient, alice: UserHandle) -> None:
    query = """{ paymentMethodRegions { id countries } paymentMethods { id recurring }
      paymentMethodPresets { id methods { id } } paymentMethodsForCountry(countryCode: "be") { countryCode currency methods { id } fallback }
      detectPaymentRegion { countryCode source }
      validatePaymentMethod(input: {countryCode: "NL", paymentMethod: "ideal"}) { valid reason } }"""
    response = await client.post("/graphql", json={"query": query}, headers={**alice.headers, "CF-IPCountry": "SE"})
    data = response.json()["data"]
    assert (
        "bancontact" in [m["id"] for m in data["paymentMethodsForCountry"]["methods"]]
        and data["paymentMethodsForCountry"]["countryCode"] == "BE"
    )
    assert data["detectPaymentRegion"] == {"countryCode": "SE", "source": "cf-ipcountry"}
    assert data["validatePaymentMethod"] == {"valid": True, "reason": None}
    bad = await gql(client, '{ paymentMethodsForCountry(countryCode: "Belgium") { currency } }', user=alice)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_admin_fields(client: httpx.AsyncClient, alice: UserHandle) -> None:
    admin = {"X-API-Key": ADMIN_API_KEY}
    query = "{ billingQuotaReport(first: 5) { users byPlan { plan users } top { userId plan } } modelCacheInfo }"
    report = (await client.post("/graphql", json={"query": query}, headers=admin)).json()
    assert report["data"]["billingQuotaReport"]["users"] >= 1 and "ttl_seconds" in report["data"]["modelCacheInfo"]
    reset = "mutation($u: ID) { resetQuotas(userId: $u) { __typename ... on ResetQuotasPayload { reset } ... on NotFoundError { message } } }"
    done = (
        await client.post(
            "/graphql", json={"query": reset, "variables": {"u": to_global_id("User", alice.user_id)}}, headers=admin
        )
    ).json()
    assert done["data"]["resetQuotas"]["__typename"] == "ResetQuotasPayload"
    one = f'{{ userBillingStatus(userId: "{alice.user_id}") {{ plan {{ id }} tokensUsed }} }}'
    assert (await client.post("/graphql", json={"query": one}, headers=admin)).json()["data"]["userBillingStatus"][
        "plan"
    ]["id"] == ROOMY_PLAN
    refused = await gql(client, reset, {"u": alice.user_id}, user=alice)
    assert refused["data"]["resetQuotas"]["__typename"] == "ForbiddenError"
    denied = await gql(client, "{ modelCacheInfo }", user=alice)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    cleared = (
        await client.post("/graphql", json={"query": "mutation { clearModelCache warmModelCache }"}, headers=admin)
    ).json()
    assert isinstance(cleared["data"]["clearModelCache"], int) and "entries" in cleared["data"]["warmModelCache"]


async def test_checkout_upgrade_and_quota_on_graphql(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    user = await register_user(bclient)
    thread_id = await make_thread(bclient, user)
    await run_to_end(bclient, user, thread_id)
    start = """mutation($t: ID!) { startRun(input: {threadId: $t, prompt: "more"}) { __typename ... on QuotaExceededError { code message } } }"""
    refused = (await gql(bclient, start, {"t": thread_id}, user=user))["data"]["startRun"]
    assert refused["__typename"] == "QuotaExceededError" and refused["code"] == "QUOTA_EXCEEDED"

    checkout = """mutation($i: CheckoutInput!) { createCheckoutSession(input: $i) {
      __typename ... on CheckoutSession { checkoutId url provider plan } ... on InputError { field } } }"""
    session = (
        await gql(bclient, checkout, {"i": {"plan": "pro", "provider": "stripe", "successUrl": SUCCESS_URL}}, user=user)
    )["data"]["createCheckoutSession"]
    assert (
        session["__typename"] == "CheckoutSession"
        and session["provider"] == "stripe"
        and session["checkoutId"].startswith("cs_test_")
    )
    invalid = (await gql(bclient, checkout, {"i": {"plan": "nope"}}, user=user))["data"]["createCheckoutSession"]
    assert invalid == {"__typename": "InputError", "field": "plan"}

    upgrade = """mutation($i: CheckoutInput!) { upgradePlan(input: $i) { __typename
      ... on UpgradePlanPayload { status subscription { plan { id } } checkout { provider plan } } ... on ConflictError { code } } }"""
    outcome = (await gql(bclient, upgrade, {"i": {"plan": "premium", "successUrl": SUCCESS_URL}}, user=user))["data"][
        "upgradePlan"
    ]
    assert outcome["status"] == "checkout_required" and outcome["checkout"] == {"provider": "polar", "plan": "premium"}
    same = (await gql(bclient, upgrade, {"i": {"plan": "free"}}, user=user))["data"]["upgradePlan"]
    assert same == {"__typename": "ConflictError", "code": "CONFLICT"}
