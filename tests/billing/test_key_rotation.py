"""Encryption keys: scrypt for passphrases, a key id in every ciphertext, previous keys that still decrypt, and
`runplane rotate-encryption-key` re-encrypting stored secrets (users' model keys, integration profiles' MCP URLs)
with the current key."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runplane.billing.crypto import DecryptionFailed, SecretBox, key_from_setting, key_id, secret_box
from runplane.billing.model_keys import associated_data
from runplane.config import Settings
from runplane.models import IntegrationProfile, UserModelKey
from runplane.resolvers.context import RequestContext
from runplane.resolvers.encryption import rotate_encryption_key
from runplane.resolvers.mcp_urls import open_mcp_url, seal_mcp_url
from runplane.services import Services
from tests.support import register_user

OLD = base64.b64encode(b"o" * 32).decode()
NEW = base64.b64encode(b"n" * 32).decode()
STRANGER = base64.b64encode(b"s" * 32).decode()


def v1_value(key: bytes, plaintext: str, associated: str) -> str:
    """A value as the first version sealed it: no key id."""
    nonce = os.urandom(12)
    return (
        "v1:" + base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), associated.encode())).decode()
    )


def test_a_passphrase_is_stretched_with_scrypt_not_hashed(tmp_path: Path) -> None:
    derived = key_from_setting("correct horse battery staple")
    assert len(derived) == 32 and derived != hashlib.sha256(b"correct horse battery staple").digest()
    assert key_from_setting(OLD) == b"o" * 32  # base64 of 32 bytes is the key itself


def test_ciphertexts_name_their_key_and_previous_keys_still_open() -> None:
    old, rotated = SecretBox(b"o" * 32), SecretBox(b"n" * 32, b"o" * 32)
    sealed = old.encrypt("sk-or-v1-secret", "user-1")
    assert sealed.startswith(f"v2:{key_id(b'o' * 32)}:")
    assert rotated.decrypt(sealed, "user-1") == "sk-or-v1-secret"
    resealed = rotated.encrypt("sk-or-v1-secret", "user-1")
    assert rotated.is_current(resealed) and not rotated.is_current(sealed)
    assert SecretBox(b"n" * 32).decrypt(resealed, "user-1") == "sk-or-v1-secret"
    with pytest.raises(DecryptionFailed, match="not in"):
        SecretBox(b"n" * 32).decrypt(sealed, "user-1")  # the old key dropped too early
    with pytest.raises(DecryptionFailed):
        rotated.decrypt(sealed, "user-2")  # the owner is still bound in


def test_v1_values_open_with_the_ring_and_with_a_passphrase_s_old_hash(tmp_path: Path) -> None:
    box = secret_box(Settings(data_dir=tmp_path, encryption_key=NEW, encryption_previous_keys=(OLD,)))
    assert box.decrypt(v1_value(b"o" * 32, "a", "u"), "u") == "a"
    passphrase = secret_box(Settings(data_dir=tmp_path, encryption_key="an old passphrase"))
    assert passphrase.decrypt(v1_value(hashlib.sha256(b"an old passphrase").digest(), "b", "u"), "u") == "b"
    with pytest.raises(DecryptionFailed):
        box.decrypt(v1_value(b"s" * 32, "c", "u"), "u")


async def test_rotation_reencrypts_stored_model_keys(server: object, client: httpx.AsyncClient) -> None:
    """Values sealed with the old key (v2 and v1) are sealed again with the new one and then open without the
    old key; a value no key of the ring opens is left as it is and counted."""
    users = [uuid.UUID((await register_user(client)).user_id) for _ in range(3)]
    old = SecretBox(b"o" * 32)
    plaintexts = {user: f"sk-or-v1-{user.hex}" for user in users}
    sealed = {
        users[0]: old.encrypt(plaintexts[users[0]], associated_data(users[0])),
        users[1]: v1_value(b"o" * 32, plaintexts[users[1]], associated_data(users[1])),
        users[2]: SecretBox(b"s" * 32).encrypt(plaintexts[users[2]], associated_data(users[2])),
    }
    for user, value in sealed.items():
        await UserModelKey.create(user_id=user, ciphertext=value, hint="sk-or-...")
    settings = Settings(data_dir=Path("/nonexistent"), encryption_key=NEW, encryption_previous_keys=(OLD,))
    report = await rotate_encryption_key(RequestContext(services=Services(settings=settings)))
    assert report.reencrypted >= 2 and report.failed >= 1  # other tests' keys, sealed with the server's, fail too

    new_only = SecretBox(b"n" * 32)
    rows = {row.user_id: row.ciphertext for row in await UserModelKey.filter(user_id__in=users)}  # type: ignore[attr-defined]
    for user in users[:2]:
        assert new_only.is_current(rows[user])
        assert new_only.decrypt(rows[user], associated_data(user)) == plaintexts[user]
    assert rows[users[2]] == sealed[users[2]]

    again = await rotate_encryption_key(RequestContext(services=Services(settings=settings)))
    assert again.current >= 2


async def test_mcp_urls_are_sealed_and_rotation_seals_those_stored_in_plain_text(
    server: object, client: httpx.AsyncClient
) -> None:
    """An MCP URL hands the user's connected tools to whoever holds it: stored sealed and bound to its owner. URLs
    stored in plain text before still read, and rotation seals them."""
    alice, bob = [uuid.UUID((await register_user(client)).user_id) for _ in range(2)]
    old = Settings(data_dir=Path("/nonexistent"), encryption_key=OLD)
    urls = {name: f"https://mcp.composio.test/v3/mcp/{name}/mcp?user_id={alice}" for name in ("sealed", "plain")}

    async def profile(owner: uuid.UUID, name: str, mcp_url: str | None) -> IntegrationProfile:
        row: IntegrationProfile = await IntegrationProfile.create(
            owner_id=owner, profile_name=f"{name}-{uuid.uuid4().hex[:6]}", toolkit_slug="github", mcp_url=mcp_url
        )
        return row

    sealed = await profile(alice, "sealed", seal_mcp_url(old, alice, urls["sealed"]))
    plain = await profile(alice, "plain", urls["plain"])
    none = await profile(alice, "none", None)
    copied = await profile(bob, "copied", sealed.mcp_url)
    assert sealed.mcp_url is not None and "composio" not in sealed.mcp_url
    assert open_mcp_url(old, sealed) == urls["sealed"] and open_mcp_url(old, plain) == urls["plain"]
    assert open_mcp_url(old, copied) is None  # sealed for Alice: it does not open on Bob's profile

    settings = Settings(data_dir=Path("/nonexistent"), encryption_key=NEW, encryption_previous_keys=(OLD,))
    report = await rotate_encryption_key(RequestContext(services=Services(settings=settings)))
    assert report.sealed >= 1 and report.reencrypted >= 1

    new_only = Settings(data_dir=Path("/nonexistent"), encryption_key=NEW)
    rows = {row.id: row for row in await IntegrationProfile.filter(id__in=[sealed.id, plain.id, none.id])}
    for row, url in ((rows[sealed.id], urls["sealed"]), (rows[plain.id], urls["plain"])):
        assert row.mcp_url is not None and secret_box(new_only).is_current(row.mcp_url)
        assert open_mcp_url(new_only, row) == url
    assert rows[none.id].mcp_url is None


def test_the_cli_command_rotates_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
    env.update(RUNPLANE_DATA_DIR=str(tmp_path), RUNPLANE_ENCRYPTION_KEY=NEW, RUNPLANE_ENCRYPTION_PREVIOUS_KEYS=OLD)
    done = subprocess.run(
        [sys.executable, "-c", "from runplane.cli import main; main(['rotate-encryption-key'])"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 0, already current 0, undecryptable 0" in done.stdout
