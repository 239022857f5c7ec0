"""Node and the npm packages the client scripts of clients/ need (`npm ci` at the repo root)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENTS = REPO / "clients"
PACKAGES = (
    "@apollo/client",
    "@urql/core",
    "@urql/exchange-persisted",
    "graphql-sse",
    "graphql-ws",
    "ws",
    "typescript",
    "relay-compiler",
)


def node_or_skip() -> str:
    node = shutil.which("node")
    if node and all((REPO / "node_modules" / name / "package.json").exists() for name in PACKAGES):
        return node
    message = "node clients unavailable: " + ("node is not installed" if not node else "run `npm ci` (package.json)")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
