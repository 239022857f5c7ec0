"""Payment methods from runplane/data/payment_methods.json, by region and country, validation, detection."""

from __future__ import annotations

import httpx

from tests.support import UserHandle

BASE = "/api/billing/payment-methods"


async def test_regions_all_and_presets(client: httpx.AsyncClient, alice: UserHandle) -> None:
    regions = (await client.get(f"{BASE}/regions", headers=alice.headers)).json()["regions"]
    europe = next(r for r in regions if r["id"] == "europe")
    assert europe["currency"] == "eur" and {"DE", "NL", "FR"} <= set(europe["countries"])
    methods = (await client.get(f"{BASE}/all", headers=alice.headers)).json()["methods"]
    ids = {m["id"] for m in methods}
    assert {"card", "sepa_debit", "ideal", "pix", "upi"} <= ids
    presets = (await client.get(f"{BASE}/presets", headers=alice.headers)).json()["presets"]
    global_preset = next(p for p in presets if p["id"] == "global")
    assert next(m["id"] for m in global_preset["methods"]) == "card" and all(
        m["id"] in ids for p in presets for m in p["methods"]
    )


async def test_methods_for_a_country(client: httpx.AsyncClient, alice: UserHandle) -> None:
    nl = (await client.get(f"{BASE}/region/nl", headers=alice.headers)).json()
    assert nl["country_code"] == "NL" and nl["currency"] == "eur" and nl["fallback"] is False
    assert "ideal" in [m["id"] for m in nl["methods"]]
    unknown = (await client.get(f"{BASE}/region/AQ", headers=alice.headers)).json()
    assert (
        unknown["country_code"] == "AQ"
        and unknown["fallback"] is True
        and next(m["id"] for m in unknown["methods"]) == "card"
    )
    for bad in ("USA", "1A", "u", "%C3%BC%C3%BC", "x" * 100):
        response = await client.get(f"{BASE}/region/{bad}", headers=alice.headers)
        assert response.status_code == 422, bad


async def test_validate(client: httpx.AsyncClient, alice: UserHandle) -> None:
    async def validate(**body: object) -> httpx.Response:
        return await client.post(f"{BASE}/validate", json=body, headers=alice.headers)

    ok = (await validate(country_code="DE", payment_method="sepa_debit")).json()
    assert ok == {
        "valid": True,
        "country_code": "DE",
        "payment_method": "sepa_debit",
        "currency": "eur",
        "reason": None,
    }
    elsewhere = (await validate(country_code="US", payment_method="ideal")).json()
    assert elsewhere["valid"] is False and "not available" in elsewhere["reason"]
    currency = (await validate(country_code="DE", payment_method="sepa_debit", currency="usd")).json()
    assert currency["valid"] is False and "USD" in currency["reason"]
    one_off = (await validate(country_code="BR", payment_method="pix")).json()
    assert one_off["valid"] is False and "subscription" in one_off["reason"]
    assert (await validate(country_code="BR", payment_method="pix", recurring=False)).json()["valid"] is True
    assert (await validate(country_code="DE", payment_method="bitcoin")).json()["valid"] is False
    for body, field in (
        ({"payment_method": "card"}, "country_code"),
        ({"country_code": "DE"}, "payment_method"),
        ({"country_code": "DE", "payment_method": "card", "currency": "euro"}, "currency"),
        ({"country_code": "DE", "payment_method": "card", "recurring": "yes"}, "recurring"),
        ({"country_code": 49, "payment_method": "card"}, "country_code"),
    ):
        response = await validate(**body)
        assert response.status_code == 422 and response.json()["field"] == field, body


async def test_detect_from_headers(client: httpx.AsyncClient, alice: UserHandle) -> None:
    async def detect(**headers: str) -> dict[str, object]:
        response = await client.get(f"{BASE}/detect", headers={**alice.headers, **headers})
        assert response.status_code == 200
        return dict(response.json())

    cf = await detect(**{"CF-IPCountry": "br", "Accept-Language": "de-DE"})
    assert cf["country_code"] == "BR" and cf["source"] == "cf-ipcountry" and cf["currency"] == "brl"
    tor = await detect(**{"CF-IPCountry": "T1", "Accept-Language": "nl-NL,nl;q=0.9,en;q=0.8"})
    assert tor["country_code"] == "NL" and tor["source"] == "accept-language"
    language_only = await detect(**{"Accept-Language": "ja;q=0.9, en;q=0.5"})
    assert language_only["country_code"] == "JP"
    nothing = await detect(**{"Accept-Language": "*"})
    assert nothing["country_code"] is None and nothing["source"] == "default" and nothing["fallback"] is True


async def test_payment_methods_need_authentication(client: httpx.AsyncClient) -> None:
    for path in ("regions", "all", "presets", "detect", "region/DE"):
        assert (await client.get(f"{BASE}/{path}")).status_code == 401
