"""Every route of docs/contracts/cheatcode-api.md is served, with the documented auth, and answers a request
without credentials as its auth says (401 for user routes, 401/403 for admin ones; never 404/405/500)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from runplane.rest_compat.registry import api

AUTH = {"Yes": "user", "No": "public", "Admin": "admin", "Webhook signature": "webhook"}
ROW = re.compile(r"^(GET|POST|PUT|PATCH|DELETE)\s+(/api/\S+)\s+(Yes|No|Admin|Webhook signature)\b", re.MULTILINE)
# The Inngest table documents a path without method or auth: it is served as admin GET (README "About /api/inngest").
METHODLESS = re.compile(r"^(/api/inngest)\s", re.MULTILINE)
PLACEHOLDER = "00000000-0000-4000-8000-000000000000"
# Documented with a token, served without one: Cheatcode's web app calls them before sign-in, as the original backend
# allowed (README "Use it with Cheatcode's web app"). They list the model catalogue and feature flags,
# nothing of any user. Feature flags answer 404 while RUNPLANE_FEATURE_FLAGS_ENABLED is off (the default).
PUBLIC_AS_IN_THE_ORIGINAL = {
    ("GET", "/api/models/available"): {200},
    ("GET", "/api/feature-flags"): {200, 404},
    ("GET", "/api/feature-flags/{flag_name}"): {200, 404},
}


REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "docs/contracts/cheatcode-api.md"  # a copy of the workplace's seeds/cheatcode-api.md


def upstream_seed() -> Path | None:
    """The reference the copy was taken from, where this checkout sits beside it (RUNPLANE_SEEDS_DIR elsewhere)."""
    seeds = os.environ.get("RUNPLANE_SEEDS_DIR")
    path = Path(seeds) / "cheatcode-api.md" if seeds else REPO.parent / "shared/seeds/cheatcode-api.md"
    return path if path.is_file() else None


def test_the_contract_copy_is_current() -> None:
    upstream = upstream_seed()
    if upstream is None:
        pytest.skip("the upstream API reference is not beside this checkout: the committed copy is the contract")
    assert CONTRACT.read_text() == upstream.read_text(), f"copy {upstream} to {CONTRACT.relative_to(REPO)}"


def documented() -> list[tuple[str, str, str]]:
    text = CONTRACT.read_text()
    rows = [(method, route, AUTH[auth]) for method, route, auth in ROW.findall(text)]
    rows += [("GET", route, "admin") for route in METHODLESS.findall(text)]
    return rows


def shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def served() -> dict[tuple[str, str], str]:
    return {(r.method, shape("/api" + r.path)): r.auth for r in api.routes}


def test_the_seed_documents_routes() -> None:
    assert len(documented()) == 85  # 84 rows with a method, and /api/inngest


def test_every_documented_route_is_served_with_its_auth() -> None:
    table = served()
    missing = [(m, p) for m, p, _ in documented() if (m, shape(p)) not in table]
    assert not missing, f"documented but not served: {missing}"
    wrong = [
        (m, p, a, table[(m, shape(p))])
        for m, p, a in documented()
        if table[(m, shape(p))] != ("public" if (m, p) in PUBLIC_AS_IN_THE_ORIGINAL else a)
    ]
    assert not wrong, f"served with another auth: {wrong}"


async def test_every_documented_route_answers_without_credentials(client: httpx.AsyncClient) -> None:
    failures = []
    for method, path, auth in documented():
        url = re.sub(r"\{[^}]+\}", PLACEHOLDER, path)
        kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        response = await client.request(method, url, timeout=10, **kwargs)
        if (method, path) in PUBLIC_AS_IN_THE_ORIGINAL:
            if response.status_code not in PUBLIC_AS_IN_THE_ORIGINAL[(method, path)]:
                failures.append((method, path, response.status_code))
            continue
        expected = {"user": {401}, "admin": {401, 403}}.get(auth)
        if (
            response.status_code in (404, 405)
            or (response.status_code >= 500 and response.status_code != 503)
            or (expected is not None and response.status_code not in expected)
            or (auth == "webhook" and response.status_code not in (400, 401, 403, 422, 503))
        ):
            failures.append((method, path, response.status_code))
    assert not failures, failures
