"""Password hashing with argon2id (argon2-cffi's tuned defaults)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
stats = {"verified": 0}  # argon2 verifications run by this process (tests count them; so may metrics)
# Verified against when the user does not exist, so a login takes the same time either way.
_DUMMY_HASH = _hasher.hash("runplane-timing-equalizer")


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow (tens of ms): keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(_verify, password_hash or _DUMMY_HASH, password, password_hash is not None)


def _verify(password_hash: str, password: str, real: bool) -> bool:
    stats["verified"] += 1
    try:
        return _hasher.verify(password_hash, password) and real
    except (VerificationError, InvalidHashError):
        return False
