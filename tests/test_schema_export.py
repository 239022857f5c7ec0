"""schema.graphql at the repository root is the SDL of the code (regenerate: `runplane export-schema`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runplane.cli import main as cli_main
from runplane.config import Settings
from runplane.schema import build_schema
from runplane.schema.export import possible_types_json

ROOT = Path(__file__).resolve().parents[1]


def test_schema_graphql_matches_the_code() -> None:
    expected = build_schema().as_str() + "\n"
    actual = (ROOT / "schema.graphql").read_text()
    assert actual == expected, "schema.graphql is stale: run `runplane export-schema` and commit it"


def test_possible_types_json_matches_the_code() -> None:
    """Apollo's possibleTypes: every union and interface with its object types (RunEventData, UserError, Node...)."""
    actual = (ROOT / "possibleTypes.json").read_text()
    assert actual == possible_types_json(build_schema()), "possibleTypes.json is stale: run `runplane export-schema`"
    found = json.loads(actual)
    assert "StatusEvent" in found["RunEventData"] and "NotFoundError" in found["UserError"]
    assert {"Project", "Thread", "AgentRun"} <= set(found["Node"])


def test_sdl_does_not_depend_on_runtime_settings() -> None:
    """Hardening settings change extensions, never types: one exported file serves every deployment."""
    hardened = Settings(graphql_introspection=False, graphql_max_depth=3, graphql_max_aliases=1, graphql_max_tokens=50)
    assert build_schema(hardened).as_str() == build_schema().as_str()


def test_export_schema_command_writes_the_same_sdl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "schema.graphql"
    monkeypatch.setenv("RUNPLANE_DATA_DIR", str(tmp_path))
    cli_main(["export-schema", str(target)])
    assert target.read_text() == build_schema().as_str() + "\n"
    assert (tmp_path / "possibleTypes.json").read_text() == possible_types_json(build_schema())
