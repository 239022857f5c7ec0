"""Token abilities (scopes). A token may do only what its abilities name."""

from __future__ import annotations

from collections.abc import Iterable

PROJECTS_READ = "projects:read"
PROJECTS_WRITE = "projects:write"
RUNS_START = "runs:start"
RUNS_CONTROL = "runs:control"
SANDBOX_EXEC = "sandbox:exec"
BILLING_READ = "billing:read"
BILLING_WRITE = "billing:write"
ADMIN = "admin"

USER_ABILITIES: frozenset[str] = frozenset(
    {PROJECTS_READ, PROJECTS_WRITE, RUNS_START, RUNS_CONTROL, SANDBOX_EXEC, BILLING_READ, BILLING_WRITE}
)
ALL_ABILITIES: frozenset[str] = USER_ABILITIES | {ADMIN}


def parse_abilities(raw: object) -> frozenset[str]:
    """Accept a list of abilities or an OAuth-style space separated `scope` string; drop unknown ones."""
    if isinstance(raw, str):
        items: Iterable[object] = raw.split()
    elif isinstance(raw, (list, tuple)):
        items = raw
    else:
        return frozenset()
    return frozenset(item for item in items if isinstance(item, str) and item in ALL_ABILITIES)


def grantable(requested: Iterable[str] | None, *, is_admin: bool) -> frozenset[str]:
    """What a login may carry: the requested subset of what the user is allowed (everything if none asked)."""
    allowed = ALL_ABILITIES if is_admin else USER_ABILITIES
    if requested is None:
        return allowed
    return frozenset(requested) & allowed
