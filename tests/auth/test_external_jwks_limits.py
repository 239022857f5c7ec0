"""JWKS refetching is bounded: a flood of tokens with made-up `kid`s cannot make us hammer the issuer.

Its own module, so its own server and identity provider: the flood spends the refetch budget.
"""

from __future__ import annotations

import uuid

import httpx

from tests.auth.conftest import ExternalServer
from tests.auth.helpers import assert_rejected_everywhere, me
from tests.fakes.jwks_server import SigningKey


def new_sub() -> str:
    return f"user_{uuid.uuid4().hex[:16]}"


async def test_an_issuer_outage_keeps_the_cached_keys(ext_client: httpx.AsyncClient, external: ExternalServer) -> None:
    idp = external.idp
    known = idp.current
    assert (await me(ext_client, idp.token(new_sub()))).status_code == 200
    idp.fail_with = 503
    try:
        rotated = idp.rotate(keep_old=True)
        before = idp.fetches
        await assert_rejected_everywhere(ext_client, idp.token(new_sub(), key=rotated))  # cannot be fetched: 401
        assert idp.fetches > before  # it did try
        assert (await me(ext_client, idp.token(new_sub(), key=known))).status_code == 200
    finally:
        idp.fail_with = None
    assert (await me(ext_client, idp.token(new_sub(), key=rotated))).status_code == 200


async def test_unknown_kid_floods_do_not_hammer_the_issuer(
    ext_client: httpx.AsyncClient, external: ExternalServer
) -> None:
    """Every unknown kid may not cost a JWKS download: refetches are rate limited."""
    idp = external.idp
    assert (await me(ext_client, idp.token(new_sub()))).status_code == 200
    before, stranger = idp.fetches, SigningKey.generate()
    for index in range(40):
        made_up = SigningKey(kid=f"made-up-{index}", private_key=stranger.private_key)
        await assert_rejected_everywhere(ext_client, idp.token(new_sub(), key=made_up))
    assert idp.fetches - before <= 12
    assert (await me(ext_client, idp.token(new_sub()))).status_code == 200
