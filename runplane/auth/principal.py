from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is calling, and what the presented credential allows."""

    user_id: uuid.UUID | None
    abilities: frozenset[str]
    session_id: uuid.UUID | None = None
    via: str = "token"  # token | external | api_key
    expires_at: float | None = None  # the token's `exp` (Unix time); None for the admin key

    def can(self, ability: str) -> bool:
        return ability in self.abilities
