"""Every malformed, forged or misused bearer token is a 401 on REST and UNAUTHENTICATED on GraphQL.

Each forged token differs from a valid one in ONE way (it reuses a live session's `sub` and `sid`),
so a rejection can only come from the defect under test.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from collections.abc import Callable

import httpx
import jwt
import pytest

from runplane.config import Settings
from tests.auth.helpers import (
    assert_rejected_everywhere,
    assert_unauthorized,
    bearer,
    builtin_token,
    claims_of,
    me,
)
from tests.fakes.jwks_server import SigningKey, b64url, sign_hs256, unsigned_token
from tests.support import LiveServer, UserHandle, register_user

Forge = Callable[[Settings, UserHandle], str]


def _alg_none(alg: str) -> Forge:
    return lambda settings, user: unsigned_token(claims_of(user.access_token), alg=alg)


def _rs256_claiming_our_issuer(settings: Settings, user: UserHandle) -> str:
    key = SigningKey.generate()
    return jwt.encode(claims_of(user.access_token), key.private_key, algorithm="RS256", headers={"kid": key.kid})


def _hs256_with_a_public_key_pem(settings: Settings, user: UserHandle) -> str:
    return sign_hs256({"alg": "HS256", "typ": "JWT"}, claims_of(user.access_token), SigningKey.generate().public_pem)


def _hs512_with_our_secret(settings: Settings, user: UserHandle) -> str:
    with warnings.catch_warnings():  # PyJWT warns that the test secret is short for SHA-512: not our concern here
        warnings.simplefilter("ignore")
        return jwt.encode(claims_of(user.access_token), settings.jwt_secret, algorithm="HS512")


def _tampered_signature(settings: Settings, user: UserHandle) -> str:
    head, payload, signature = user.access_token.split(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    return f"{head}.{payload}.{flipped}"


def _tampered_payload(settings: Settings, user: UserHandle) -> str:
    """Grant ourselves admin and keep the original signature."""
    head, _, signature = user.access_token.split(".")
    claims = {**claims_of(user.access_token), "abilities": ["admin"]}
    return f"{head}.{b64url(json.dumps(claims).encode())}.{signature}"


def _oversized_but_validly_signed(settings: Settings, user: UserHandle) -> str:
    return builtin_token(settings, user.access_token, padding="p" * 9000)


def _other_users_session(settings: Settings, user: UserHandle) -> str:
    return builtin_token(settings, user.access_token, sid=str(uuid.uuid4()))


FORGERIES: dict[str, Forge] = {
    "alg none": _alg_none("none"),
    "alg None": _alg_none("None"),
    "alg NONE": _alg_none("NONE"),
    "alg none with a signature": lambda s, u: unsigned_token(claims_of(u.access_token)) + u.access_token.split(".")[2],
    "RS256 claiming our issuer": _rs256_claiming_our_issuer,
    "HS256 with an RSA public key PEM as secret": _hs256_with_a_public_key_pem,
    "HS512 with our secret": _hs512_with_our_secret,
    "wrong secret": lambda s, u: builtin_token(s, u.access_token, secret="another-secret-" + "y" * 40),
    "expired": lambda s, u: builtin_token(s, u.access_token, iat=int(time.time()) - 3600, exp=int(time.time()) - 600),
    "not yet valid": lambda s, u: builtin_token(s, u.access_token, nbf=int(time.time()) + 3600),
    "wrong audience": lambda s, u: builtin_token(s, u.access_token, aud="someone-else"),
    "no audience": lambda s, u: builtin_token(s, u.access_token, drop=("aud",)),
    "wrong issuer": lambda s, u: builtin_token(s, u.access_token, iss="https://evil.example"),
    "no expiry": lambda s, u: builtin_token(s, u.access_token, drop=("exp",)),
    "no session": lambda s, u: builtin_token(s, u.access_token, drop=("sid",)),
    "session of nobody": _other_users_session,
    "subject not a uuid": lambda s, u: builtin_token(s, u.access_token, sub="root"),
    "not an access token": lambda s, u: builtin_token(s, u.access_token, typ="refresh"),
    "tampered signature": _tampered_signature,
    "tampered payload": _tampered_payload,
    "signature stripped": lambda s, u: u.access_token.rsplit(".", 1)[0] + ".",
    "refresh token as access token": lambda s, u: u.refresh_token,
    "garbage": lambda s, u: "not-a-token",
    "three garbage segments": lambda s, u: "a.b.c",
    "json array payload": lambda s, u: jwt.api_jws.encode(b"[1, 2]", s.jwt_secret, algorithm="HS256"),
    "non-base64 header": lambda s, u: "%%%." + u.access_token.split(".", 1)[1],
    "oversized garbage": lambda s, u: "x" * 9000,
    "oversized, validly signed": _oversized_but_validly_signed,
    "unicode": lambda s, u: "tökén.ünïcode.✓",
}


@pytest.fixture(scope="module")
async def victim(server: LiveServer) -> UserHandle:
    """One user for all forgeries: none of them may change anything, which each test checks."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        return await register_user(http)


@pytest.mark.parametrize("name", list(FORGERIES))
async def test_forged_token_is_rejected(
    name: str, server: LiveServer, client: httpx.AsyncClient, victim: UserHandle
) -> None:
    token = FORGERIES[name](server.settings, victim)
    await assert_rejected_everywhere(client, token)
    # The genuine token of the same session still works: only the forgery was refused.
    assert (await me(client, victim.access_token)).status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Basic dXNlcjpwYXNz", "Token abc", "bearer", "Bearer a b c"],
)
async def test_malformed_authorization_header_is_401(header: str, client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.get("/api/auth/me", headers={"Authorization": header}))


async def test_scheme_is_case_insensitive(client: httpx.AsyncClient, alice: UserHandle) -> None:
    response = await client.get("/api/auth/me", headers={"Authorization": f"bearer {alice.access_token}"})
    assert response.status_code == 200


async def test_a_huge_authorization_header_is_refused_without_a_500(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/me", headers=bearer("x" * 60_000))
    assert 400 <= response.status_code < 500 and response.status_code != 404


async def test_a_bad_token_on_a_public_route_does_not_block_login(client: httpx.AsyncClient, alice: UserHandle) -> None:
    """A stale token left in a client's headers must not stop it from logging in again."""
    response = await client.post(
        "/api/auth/token",
        json={"email": alice.email, "password": alice.password},
        headers=bearer("stale.garbage.token"),
    )
    assert response.status_code == 200, response.text


def test_forged_segments_decode_as_intended() -> None:
    """Guard against a forgery helper that produces an accidentally malformed token."""
    token = unsigned_token({"sub": "x"})
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "none", "typ": "JWT"} and token.endswith(".")
