"""Settings (runplane/config.py, pydantic-settings): env name = field name, a bad value stops start-up naming the
variable, switches take only true/false spellings, and README's settings table matches the model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from runplane.config import (
    CLI_VARIABLES,
    ENV_PREFIX,
    NOT_FROM_ENVIRONMENT,
    Settings,
    SettingsError,
    unknown_variables,
)

REPO = Path(__file__).resolve().parent.parent
FIELDS = {name: field for name, field in Settings.model_fields.items() if name not in NOT_FROM_ENVIRONMENT}
SWITCHES = sorted(name for name, field in FIELDS.items() if field.annotation is bool)


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in os.environ:
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RUNPLANE_DATA_DIR", str(tmp_path))
    return monkeypatch


def refused(variable: str) -> str:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    assert variable in str(caught.value), str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize("spelling", ["enabled", "disabled", "2", "truee", "nope", "-1", "✓"])
def test_a_switch_refuses_other_spellings(environment: pytest.MonkeyPatch, spelling: str) -> None:
    """It used to read as false: RUNPLANE_SANDBOX_BLOCK_HOST_NETWORK=enabled silently turned the guard off."""
    environment.setenv("RUNPLANE_SANDBOX_BLOCK_HOST_NETWORK", spelling)
    assert repr(spelling) in refused("RUNPLANE_SANDBOX_BLOCK_HOST_NETWORK")


@pytest.mark.parametrize("field", SWITCHES)
def test_every_switch_reads_true_and_false_spellings(environment: pytest.MonkeyPatch, field: str) -> None:
    for spelling, value in [("true", True), ("FALSE", False), ("1", True), ("0", False), ("yes", True), ("off", False)]:
        environment.setenv(env_name(field), spelling)
        assert getattr(Settings.from_env(), field) is value
    environment.setenv(env_name(field), "enabled")
    refused(env_name(field))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RUNPLANE_RATE_LIMIT_PER_MINUTE", "ten"),
        ("RUNPLANE_RATE_LIMIT_PER_MINUTE", "٣"),
        ("RUNPLANE_RATE_LIMIT_PER_MINUTE", "-1"),
        ("RUNPLANE_MAX_BODY_BYTES", "1.5"),
        ("RUNPLANE_HTTP_BODY_TIMEOUT", "inf"),
        ("RUNPLANE_HTTP_BODY_TIMEOUT", "nan"),
        ("RUNPLANE_HTTP_BODY_TIMEOUT", "soon"),
        ("RUNPLANE_RUN_QUEUE", "celery"),
        ("RUNPLANE_MODEL_PROVIDER", "anthropic"),
        ("RUNPLANE_REST_DIALECT", "orchestrator"),
        ("RUNPLANE_SMTP_SECURITY", "tls"),
        ("RUNPLANE_SMTP_PORT", "70000"),
        ("RUNPLANE_LOG_LEVEL", "LOUD"),
        ("RUNPLANE_BILLING_PROVIDER", "paypal"),
        ("RUNPLANE_SANDBOX_COMMAND_TIMEOUT", "a minute"),  # the old name of a renamed setting
    ],
)
def test_malformed_values_stop_start_up_naming_the_variable(
    environment: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    environment.setenv(variable, value)
    refused(variable)


def sample(field: str) -> tuple[str, object]:
    """A value of the field's type other than its default, as written in the environment and as read."""
    annotation = FIELDS[field].annotation
    options = [a for a in typing.get_args(annotation) if a is not type(None)] if _is_union(annotation) else []
    kind = options[0] if len(options) == 1 else annotation
    default = FIELDS[field].default
    if typing.get_origin(kind) is typing.Literal:
        choice = next(c for c in typing.get_args(kind) if c != default)
        return choice, choice
    if kind is bool:
        return str(not default).lower(), not default
    if kind is int:
        return str(default + 1), default + 1
    if kind is float:
        return str(default + 0.5), default + 0.5
    if kind is Path:
        return "/tmp/runplane-settings", Path("/tmp/runplane-settings")
    if typing.get_origin(kind) is tuple:
        return "a, b,,c", ("a", "b", "c")
    assert kind is str, (field, annotation)
    return f"value of {field}", f"value of {field}"


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def test_every_field_is_read_from_its_own_variable(environment: pytest.MonkeyPatch) -> None:
    """env name = field name: each field in capitals with the prefix, nothing else to look up."""
    expected = {}
    for field in FIELDS:
        written, expected[field] = sample(field)
        environment.setenv(env_name(field), written)
    settings = Settings.from_env()
    assert {field: getattr(settings, field) for field in FIELDS} == expected


def test_renamed_variables_are_still_read(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("RUNPLANE_SANDBOX_COMMAND_TIMEOUT", "5")
    environment.setenv("RUNPLANE_ACCESS_TOKEN_TTL", "60")
    settings = Settings.from_env()
    assert settings.sandbox_command_timeout_seconds == 5.0 and settings.access_token_ttl_seconds == 60


def test_empty_means_the_default_and_keywords_win(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("RUNPLANE_RATE_LIMIT_PER_MINUTE", "")
    environment.setenv("RUNPLANE_RUN_STARTS_PER_MINUTE", "2")
    settings = Settings.from_env(run_starts_per_minute=9)
    assert settings.rate_limit_per_minute == 60 and settings.run_starts_per_minute == 9


def test_keyword_construction_ignores_the_environment(environment: pytest.MonkeyPatch) -> None:
    """Tests build Settings(...) with exactly what they pass, whatever the developer's shell exports."""
    environment.setenv("RUNPLANE_RATE_LIMIT_PER_MINUTE", "1")
    environment.setenv("RUNPLANE_INSTANCE_ID", "shared")
    assert Settings().rate_limit_per_minute == 60
    assert Settings.from_env().instance_id != "shared"  # one id per process, even when they share an environment


def migrate_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`runplane migrate` in a real process with exactly this environment."""
    command = [sys.executable, "-c", "from runplane.cli import main; main(['migrate'])"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_the_cli_refuses_to_start_with_a_bad_value(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(RUNPLANE_DATA_DIR=str(tmp_path), RUNPLANE_SANDBOX_BLOCK_HOST_NETWORK="enabled")
    done = migrate_with(env)
    assert done.returncode != 0
    assert "RUNPLANE_SANDBOX_BLOCK_HOST_NETWORK='enabled'" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runplane.sqlite3").exists()


def readme_table() -> dict[str, str]:
    readme = (REPO / "README.md").read_text()
    return dict(re.findall(r"^\| `(RUNPLANE_[A-Z0-9_]+)` \| ([^|]*) \|", readme, re.M))


def test_the_readme_table_lists_every_setting_and_nothing_else() -> None:
    documented = set(readme_table()) - CLI_VARIABLES
    assert documented == {env_name(field) for field in FIELDS}


def shown(default: object) -> str:
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def test_the_readme_table_shows_each_default() -> None:
    """A default written as one literal (`60`, `true`) is the model's; the others (unset, derived) have none."""
    table = readme_table()
    wrong = {}
    for field, info in FIELDS.items():
        cell = table[env_name(field)].strip()
        literal = re.fullmatch(r"`([^`<]*)`", cell)
        if literal and literal.group(1) != shown(info.default):
            wrong[env_name(field)] = (cell, info.default)
        if not literal and info.default not in (None, "", ()) and "<" not in cell:
            wrong[env_name(field)] = (cell, info.default)
    assert not wrong, wrong


def test_a_misspelt_variable_is_named_at_start_up(tmp_path: Path) -> None:
    """The guard's variable misspelt leaves the guard at its default: start-up says so, and what was meant."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(RUNPLANE_DATA_DIR=str(tmp_path), RUNPLANE_SANDBOX_BLOCK_HOST_NETWROK="false", RUNPLANE_PORT="9")
    done = migrate_with(env)
    assert done.returncode == 0, done.stderr
    assert (
        "RUNPLANE_SANDBOX_BLOCK_HOST_NETWROK is not a setting and is ignored "
        "(did you mean RUNPLANE_SANDBOX_BLOCK_HOST_NETWORK?)" in done.stderr
    ), done.stderr
    assert "RUNPLANE_PORT" not in done.stderr and "RUNPLANE_DATA_DIR" not in done.stderr


def test_only_the_documented_other_variables_are_exempt() -> None:
    assert unknown_variables({"RUNPLANE_HOST": "x", "RUNPLANE_TEST_DATABASE": "x", "RUNPLANE_LOG_LEVEL": "x"}) == []
    assert unknown_variables({"RUNPLANE_SMTP_TIMEOUT": "5"}) == []  # an older name still read
    assert unknown_variables({"RUNPLANE_NOPE": "1", "OTHER": "1"}) == ["RUNPLANE_NOPE is not a setting and is ignored"]
