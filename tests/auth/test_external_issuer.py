"""External issuers (Clerk-style RS256 through a JWKS URL) against a second, real runplane server."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt

from runplane.auth.abilities import USER_ABILITIES
from tests.auth.conftest import EXTERNAL_AUDIENCE, EXTERNAL_ISSUER, ExternalServer
from tests.auth.helpers import (
    ME,
    assert_error,
    assert_rejected_everywhere,
    bearer,
    claims_of,
    gql_as,
    me,
)
from tests.fakes.jwks_server import (
    FakeJWKSServer,
    SigningKey,
    sign_rs256,
    unsigned_token,
)
from tests.support import register_user


def new_sub() -> str:
    return f"user_{uuid.uuid4().hex[:16]}"


async def profile(client: httpx.AsyncClient, token: str) -> dict[str, object]:
    response = await me(client, token)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_valid_external_token_provisions_the_user_by_sub(
    ext_client: httpx.AsyncClient, external: ExternalServer
) -> None:
    sub = new_sub()
    first = await profile(ext_client, external.idp.token(sub))
    second = await profile(ext_client, external.idp.token(sub))  # a fresh token, same subject
    assert first["id"] == second["id"] and first["is_admin"] is False
    assert first["abilities"] == sorted(USER_ABILITIES)
    other = await profile(ext_client, external.idp.token(new_sub()))
    assert other["id"] != first["id"]


async def test_external_user_on_graphql(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    token = external.idp.token(new_sub(), email="gql-ext@example.com")
    rest = await profile(ext_client, token)
    result = await gql_as(ext_client, ME, token)
    assert "errors" not in result, result
    assert result["data"]["me"]["email"] == rest["email"] == "gql-ext@example.com"


async def test_external_user_can_use_the_api(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    headers = bearer(external.idp.token(new_sub()))
    created = await ext_client.post("/api/projects", json={"name": "from clerk"}, headers=headers)
    assert created.status_code == 201, created.text
    listed = (await ext_client.get("/api/projects", headers=headers)).json()["projects"]
    assert [p["name"] for p in listed] == ["from clerk"]


async def test_external_email_never_takes_over_a_password_account(
    ext_client: httpx.AsyncClient, external: ExternalServer
) -> None:
    owner = await register_user(ext_client)
    intruder = await profile(ext_client, external.idp.token(new_sub(), email=owner.email))
    assert intruder["id"] != owner.user_id and intruder["email"] is None
    assert (await profile(ext_client, owner.access_token))["email"] == owner.email


async def test_external_sub_cannot_name_a_builtin_user(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    owner = await register_user(ext_client)
    impostor = await profile(ext_client, external.idp.token(owner.user_id))
    assert impostor["id"] != owner.user_id


async def test_odd_subjects_and_emails_do_not_break_provisioning(
    ext_client: httpx.AsyncClient, external: ExternalServer
) -> None:
    idp = external.idp
    await assert_rejected_everywhere(ext_client, idp.token("nul\x00sub"))
    # Too long to store whole: truncating would merge two subjects into one account.
    long_sub = "s" * 600
    await assert_rejected_everywhere(ext_client, idp.token(long_sub))
    await assert_rejected_everywhere(ext_client, idp.token(long_sub + "other"))
    for email in ("nul\x00@example.com", "not-an-email", "x" * 400 + "@example.com", 42, "a@example.com\n"):
        assert (await profile(ext_client, idp.token(new_sub(), email=email)))["email"] is None
    assert (await profile(ext_client, idp.token(new_sub(), email="MiXeD@Example.COM")))["email"] == "mixed@example.com"


async def test_builtin_tokens_still_work_beside_the_external_issuer(ext_client: httpx.AsyncClient) -> None:
    user = await register_user(ext_client)
    assert (await profile(ext_client, user.access_token))["email"] == user.email
    rotated = await ext_client.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
    assert rotated.status_code == 200


# ---- key rotation ------------------------------------------------------------------------------


async def test_unknown_kid_after_rotation_refetches_the_jwks(
    ext_client: httpx.AsyncClient, external: ExternalServer
) -> None:
    idp, sub = external.idp, new_sub()
    user_id = (await profile(ext_client, idp.token(sub)))["id"]  # keys are cached now
    old, fetches = idp.current, idp.fetches
    new = idp.rotate()
    assert (await profile(ext_client, idp.token(sub, key=new)))["id"] == user_id
    assert idp.fetches == fetches + 1
    # The old key left the document: its tokens stop working once the new document is in.
    await assert_rejected_everywhere(ext_client, idp.token(sub, key=old))


async def test_overlapping_keys_both_verify(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    idp, sub = external.idp, new_sub()
    old = idp.current
    await profile(ext_client, idp.token(sub, key=old))
    new = idp.rotate(keep_old=True)
    assert (await profile(ext_client, idp.token(sub, key=new)))["id"] == (
        await profile(ext_client, idp.token(sub, key=old))
    )["id"]


async def test_a_kid_that_was_never_published_is_rejected(
    ext_client: httpx.AsyncClient, external: ExternalServer
) -> None:
    stranger = SigningKey.generate()
    await assert_rejected_everywhere(ext_client, external.idp.token(new_sub(), key=stranger))
    # A key we do not know, but carrying the kid of one we do: the signature gives it away.
    impostor = SigningKey(kid=external.idp.current.kid, private_key=stranger.private_key)
    await assert_rejected_everywhere(ext_client, external.idp.token(new_sub(), key=impostor))


async def test_a_malformed_key_in_the_jwks_does_not_break_the_good_ones(
    ext_client: httpx.AsyncClient, external: ExternalServer
) -> None:
    idp = external.idp
    idp.extra_jwks = [
        {"kty": "RSA", "kid": "broken-rsa", "use": "sig", "n": "%%%", "e": "AQAB"},
        {"kty": "EC", "kid": "broken-ec", "use": "sig", "crv": "P-999", "x": "AA", "y": "AA"},
        {"kty": "oct", "kid": "symmetric", "k": "c2VjcmV0"},
        {"kid": "no-kty"},
        "not-an-object",  # type: ignore[list-item]
    ]
    try:
        new = idp.rotate()  # an unknown kid forces the server to fetch the document with the junk in it
        assert (await me(ext_client, idp.token(new_sub(), key=new))).status_code == 200
        forged = sign_rs256({"alg": "RS256", "kid": "broken-rsa"}, _claims(idp), idp.current)
        await assert_rejected_everywhere(ext_client, forged)
    finally:
        idp.extra_jwks = []


# ---- rejection ---------------------------------------------------------------------------------


def _claims(idp: FakeJWKSServer, **changes: object) -> dict[str, object]:
    now = int(time.time())
    return {"iss": idp.issuer, "aud": idp.audience, "sub": new_sub(), "iat": now, "exp": now + 300, **changes}


async def test_wrong_or_missing_audience_is_rejected(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    idp = external.idp
    await assert_rejected_everywhere(ext_client, idp.token(new_sub(), aud="another-app"))
    await assert_rejected_everywhere(ext_client, idp.token(new_sub(), aud=None))
    await assert_rejected_everywhere(ext_client, idp.token(new_sub(), aud=["another-app", "third"]))
    assert (await me(ext_client, idp.token(new_sub(), aud=["another-app", EXTERNAL_AUDIENCE]))).status_code == 200


async def test_token_from_an_unknown_issuer_is_rejected(
    ext_client: httpx.AsyncClient, external: ExternalServer
) -> None:
    # Signed by the trusted key, but naming another issuer.
    await assert_rejected_everywhere(ext_client, external.idp.token(new_sub(), iss="https://stranger.example"))
    await assert_rejected_everywhere(ext_client, external.idp.token(new_sub(), iss=None))
    # A whole other identity provider with its own JWKS.
    with FakeJWKSServer(issuer="https://stranger.example", audience=EXTERNAL_AUDIENCE) as stranger:
        await assert_rejected_everywhere(ext_client, stranger.token(new_sub()))
        # ... even when it claims to be our issuer.
        impostor = FakeJWKSServer(issuer=EXTERNAL_ISSUER, audience=EXTERNAL_AUDIENCE)
        await assert_rejected_everywhere(ext_client, impostor.token(new_sub()))
    assert stranger.fetches == 0


async def test_algorithm_confusion_is_rejected(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    idp = external.idp
    # HS256 keyed with the issuer's own public key PEM (that a server would happily serve to anyone).
    await assert_rejected_everywhere(ext_client, idp.hs256_with_public_key(sub=new_sub()))
    await assert_rejected_everywhere(ext_client, unsigned_token(_claims(idp)))
    # RS256 signed by the external key but claiming the built-in issuer.
    ours = idp.token(new_sub(), iss="runplane", aud="runplane", sid=str(uuid.uuid4()), typ="access")
    await assert_rejected_everywhere(ext_client, ours)


async def test_expired_and_incomplete_external_tokens_are_rejected(
    ext_client: httpx.AsyncClient, external: ExternalServer
) -> None:
    idp, now = external.idp, int(time.time())
    await assert_rejected_everywhere(ext_client, idp.token(new_sub(), iat=now - 3600, nbf=now - 3600, exp=now - 60))
    await assert_rejected_everywhere(ext_client, idp.token(new_sub(), nbf=now + 3600))
    await assert_rejected_everywhere(ext_client, idp.token(sub=None))  # type: ignore[arg-type]
    await assert_rejected_everywhere(ext_client, idp.token(new_sub(), exp=None))
    await assert_rejected_everywhere(ext_client, idp.token(123))  # type: ignore[arg-type]


async def test_tampered_external_token_is_rejected(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    token = external.idp.token(new_sub(), scope="projects:read")
    head, payload, signature = token.split(".")
    forged = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b"projects:read", b"admin projects:write")
    ).decode()
    await assert_rejected_everywhere(ext_client, f"{head}.{forged}.{signature}")


async def test_odd_headers_are_rejected_without_a_500(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    idp = external.idp
    for header in (
        {"alg": "RS256", "kid": ["a", "b"]},
        {"alg": "RS256", "kid": 7},
        {"alg": "RS256", "kid": "x" * 5000},
        {"alg": ["RS256"], "kid": idp.current.kid},
        {"alg": "RS256", "kid": None, "crit": ["exp"]},
        {"alg": "ES256", "kid": idp.current.kid},
        {"alg": "PS256", "kid": idp.current.kid},
        {"alg": "HS256", "kid": idp.current.kid},
        {"alg": "EdDSA", "kid": idp.current.kid},
    ):
        await assert_rejected_everywhere(ext_client, sign_rs256(header, _claims(idp), idp.current))


# ---- abilities from scope / abilities claims ----------------------------------------------------


async def test_scope_claim_restricts_abilities(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    token = external.idp.token(new_sub(), scope="openid profile projects:read")
    assert (await profile(ext_client, token))["abilities"] == ["projects:read"]
    assert (await ext_client.get("/api/projects", headers=bearer(token))).status_code == 200
    assert_error(await ext_client.post("/api/projects", json={"name": "x"}, headers=bearer(token)), 403)


async def test_abilities_claim_restricts_abilities(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    token = external.idp.token(new_sub(), abilities=["projects:write", "bogus"])
    assert (await profile(ext_client, token))["abilities"] == ["projects:write"]
    assert_error(await ext_client.get("/api/projects", headers=bearer(token)), 403)


async def test_external_tokens_never_grant_admin(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    for claims in ({"scope": "admin projects:read"}, {"abilities": ["admin"]}, {"scp": ["admin", "billing:read"]}):
        granted = (await profile(ext_client, external.idp.token(new_sub(), **claims)))["abilities"]
        assert isinstance(granted, list) and "admin" not in granted


async def test_an_empty_scope_grants_nothing(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    token = external.idp.token(new_sub(), scope="")
    assert (await profile(ext_client, token))["abilities"] == []
    assert_error(await ext_client.get("/api/projects", headers=bearer(token)), 403)


async def test_external_logout_does_not_error(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    token = external.idp.token(new_sub())
    response = await ext_client.post("/api/auth/logout", headers=bearer(token))
    assert response.status_code == 204
    sessions = await ext_client.get("/api/auth/sessions", headers=bearer(token))
    assert sessions.status_code == 200 and sessions.json()["sessions"] == []


def test_claims_helper_is_a_valid_external_token_shape() -> None:
    idp = FakeJWKSServer(issuer=EXTERNAL_ISSUER, audience=EXTERNAL_AUDIENCE)
    assert set(_claims(idp)) == {"iss", "aud", "sub", "iat", "exp"}
    assert claims_of(idp.token("s"))["aud"] == EXTERNAL_AUDIENCE
