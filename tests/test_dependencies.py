"""Dependencies: every package runplane imports is declared, and requirements.lock (what CI, the Dockerfile and the
README install with `-c requirements.lock`) pins each declared one within its range.

Regenerate the lock after changing pyproject.toml:
`uv pip compile pyproject.toml --extra test --universal --python-version 3.11 -o requirements.lock`."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(line) for line in PROJECT["dependencies"]]
TEST = [Requirement(line) for line in PROJECT["optional-dependencies"]["test"]]


def imported_top_level_modules() -> set[str]:
    names = set()
    for path in (REPO / "runplane").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"runplane"}


def locked() -> dict[str, list[str]]:
    pins: dict[str, list[str]] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line):
            pins.setdefault(canonicalize_name(match.group(1)), []).append(match.group(2))
    return pins


def test_every_imported_package_is_declared() -> None:
    declared = {canonicalize_name(requirement.name) for requirement in RUNTIME}
    providers = importlib.metadata.packages_distributions()
    undeclared = {
        module: providers.get(module)
        for module in imported_top_level_modules()
        if not {canonicalize_name(d) for d in providers.get(module, [module])} & declared
    }
    assert not undeclared, f"imported by runplane/ but not in pyproject.toml's dependencies: {undeclared}"


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    pins = locked()
    wrong = {}
    for requirement in RUNTIME + TEST:
        versions = pins.get(canonicalize_name(requirement.name))
        if not versions or not all(requirement.specifier.contains(Version(v)) for v in versions):
            wrong[str(requirement)] = versions
    assert not wrong, f"requirements.lock is stale (regenerate it, see this module's docstring): {wrong}"


def test_python_multipart_floor_is_past_its_dos_advisories() -> None:
    multipart = next(r for r in RUNTIME if canonicalize_name(r.name) == "python-multipart")
    assert not multipart.specifier.contains(Version("0.0.30")) and multipart.specifier.contains(Version("0.0.31"))


def test_strawberry_is_pinned_below_its_next_minor() -> None:
    """schema/compiled.py and graphql_view.py subclass its internals: tests/graphql/test_strawberry_seam.py."""
    strawberry = next(r for r in RUNTIME if r.name == "strawberry-graphql")
    installed = Version(importlib.metadata.version("strawberry-graphql"))
    next_minor = Version(f"{installed.major}.{installed.minor + 1}")
    assert strawberry.specifier.contains(installed) and not strawberry.specifier.contains(next_minor)


def test_ci_docker_and_readme_install_with_the_lock() -> None:
    assert "-c requirements.lock" in (REPO / ".ci" / "run").read_text()
    assert "-c requirements.lock" in (REPO / "docker" / "Dockerfile").read_text()
    assert "COPY pyproject.toml README.md requirements.lock" in (REPO / "docker" / "Dockerfile").read_text()
    readme = (REPO / "README.md").read_text()
    assert "pip install -e . -c requirements.lock && runplane serve" in readme
