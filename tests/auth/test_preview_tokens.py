"""Preview tokens (runplane/auth/preview_tokens.py): signed with a key of their own, checked for type and expiry."""

from __future__ import annotations

import time

import jwt
import pytest

from runplane.auth.preview_tokens import PreviewClaims, sign_preview_token, verify_preview_token
from runplane.errors import NotFound, Unauthenticated

SECRET = "s" * 40
CLAIMS = PreviewClaims(user_id="u1", sandbox_id="sbx1", port=3000)


def test_a_signed_token_verifies_to_its_claims() -> None:
    token = sign_preview_token(SECRET, CLAIMS, expires=int(time.time()) + 60)
    assert verify_preview_token(SECRET, token) == CLAIMS


def test_an_expired_link_asks_for_a_new_one() -> None:
    token = sign_preview_token(SECRET, CLAIMS, expires=int(time.time()) - 5)
    with pytest.raises(Unauthenticated, match="expired"):
        verify_preview_token(SECRET, token)


@pytest.mark.parametrize(
    "forged",
    [
        # An access token signed with the JWT secret itself is not a preview token (the keys differ)...
        {"sub": "u1", "sbx": "sbx1", "port": 3000, "typ": "preview"},
    ],
)
def test_other_tokens_are_not_previews(forged: dict[str, object]) -> None:
    token = jwt.encode({**forged, "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    with pytest.raises(NotFound):
        verify_preview_token(SECRET, token)
    with pytest.raises(NotFound):
        verify_preview_token(
            "another secret entirely, forty chars long!",
            sign_preview_token(SECRET, CLAIMS, expires=int(time.time()) + 60),
        )
    with pytest.raises(NotFound):
        verify_preview_token(SECRET, "not-a-jwt")
