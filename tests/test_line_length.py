"""No line of runplane/ is longer than 120 characters. Ruff's E501 measures a line without its trailing pragma
(`# type: ignore[...]`, `# noqa`), so a long line carrying one passes ruff; this counts every character.
Migrations are left as `tortoise makemigrations` wrote them (pyproject's per-file-ignores say the same)."""

from __future__ import annotations

from pathlib import Path

MAX_LINE = 120
PACKAGE = Path(__file__).resolve().parents[1] / "runplane"


def test_no_line_of_the_package_is_over_120_characters() -> None:
    long_lines = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > MAX_LINE
    ]
    assert not long_lines, f"lines over {MAX_LINE} characters: {long_lines}"
