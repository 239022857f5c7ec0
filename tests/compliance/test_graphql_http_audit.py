"""The GraphQL-over-HTTP audit suite of the npm `graphql-http` package (auditServer) against the real server:
every MUST and SHOULD audit passes, the application/graphql-response+json ones included.

The audit runs once per module (tests/compliance/js/audit.mjs, under node); each MUST/SHOULD audit is then one
test case, named by its id and title, so a failure reads like the spec clause it breaks. The audit list comes
from the installed graphql-http at collection time (`audit.mjs --list`), so an upgrade that adds audits
checks them too. Without node or `npm ci`, the tests skip (and fail under CI=true).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import LiveServer

REPO = Path(__file__).resolve().parents[2]
AUDIT_JS = Path(__file__).with_name("js") / "audit.mjs"
NODE_PACKAGES = ("graphql-http", "graphql")
FAILING = {"error": "MUST", "warn": "SHOULD"}  # "notice" is a MAY audit that did not pass: allowed


def node_unavailable() -> str | None:
    if not shutil.which("node"):
        return "node is not installed"
    if not all((REPO / "node_modules" / name / "package.json").exists() for name in NODE_PACKAGES):
        return "npm packages missing: run `npm ci` at the repo root (package.json)"
    return None


def node_or_skip() -> str:
    """node with graphql-http installed. Missing: skip with the reason, or fail in CI (CI=true)."""
    reason = node_unavailable()
    if reason is None:
        return str(shutil.which("node"))
    message = f"graphql-http audit unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def required_audits() -> list[dict[str, str]]:
    """The MUST and SHOULD audits of the installed graphql-http (no request is sent); [] without node."""
    if node_unavailable():
        return []
    listed = subprocess.run(
        ["node", str(AUDIT_JS), "--list"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    return [a for a in json.loads(listed.stdout) if a["name"].startswith(("MUST ", "SHOULD "))]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "audit" in metafunc.fixturenames:
        audits = required_audits()
        # Without node a single case remains, which skips (or fails in CI) with the reason.
        metafunc.parametrize(
            "audit", audits or [None], ids=[f"{a['id']} {a['name']}" for a in audits] or ["node-unavailable"]
        )


def describe(result: dict[str, Any]) -> str:
    detail = f"{result['id']} [{result['status']}] {result['name']}\n    reason: {result.get('reason')}"
    if "responseStatus" in result:
        detail += f"\n    response: {result['responseStatus']} {result.get('responseContentType')} {result.get('responseBody', '')!r}"
    return detail


@pytest.fixture(scope="module")
async def audit_results(server: LiveServer) -> AsyncIterator[dict[str, dict[str, Any]]]:
    """auditServer against the session's real server, once: {audit id: result}."""
    node = node_or_skip()
    started = time.monotonic()
    # Asynchronously: the server runs in this event loop, a blocking subprocess.run would stall it.
    proc = await asyncio.create_subprocess_exec(
        node,
        str(AUDIT_JS),
        f"{server.base_url}/graphql",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, f"audit.mjs exited with {proc.returncode}: {stderr.decode(errors='replace')}"
    results = json.loads(stdout)
    print(f"graphql-http audit: {len(results)} audits in {time.monotonic() - started:.2f}s")
    yield {result["id"]: result for result in results}


def test_no_must_or_should_audit_fails(audit_results: dict[str, dict[str, Any]]) -> None:
    failing = [r for r in audit_results.values() if r["status"] in FAILING]
    assert not failing, f"{len(failing)} GraphQL-over-HTTP audits fail:\n" + "\n".join(map(describe, failing))


def test_audit(audit: dict[str, str] | None, audit_results: dict[str, dict[str, Any]]) -> None:
    assert audit is not None  # no audit listed only without node, and then audit_results has skipped
    result = audit_results.get(audit["id"])
    assert result is not None, f"audit {audit['id']} ({audit['name']}) did not run"
    assert result["status"] == "ok", describe(result)
