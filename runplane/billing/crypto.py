"""Secrets at rest: AES-256-GCM with a random nonce per value and the owner bound in as associated data,
so a ciphertext copied onto another user's row does not decrypt."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runplane.config import Settings

VERSION = "v1"
NONCE_BYTES = 12
KEY_FILE = "encryption-key"


class DecryptionFailed(Exception):
    """Wrong key (RUNPLANE_ENCRYPTION_KEY changed?) or a tampered value."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, associated: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), associated.encode())
        return f"{VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, associated: str) -> str:
        version, _, payload = token.partition(":")
        if version != VERSION:
            raise DecryptionFailed(f"unknown ciphertext version {version!r}")
        try:
            raw = base64.b64decode(payload, validate=True)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise DecryptionFailed("secret could not be decrypted") from exc


def secret_box(settings: Settings) -> SecretBox:
    return _box(settings.encryption_key, str(settings.data_dir))


@lru_cache(maxsize=8)
def _box(configured: str | None, data_dir: str) -> SecretBox:
    return SecretBox(key_from_setting(configured) if configured else _persisted_key(Path(data_dir) / KEY_FILE))


def key_from_setting(value: str) -> bytes:
    """A base64 value of exactly 32 bytes is the key itself; any other string is hashed into one."""
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(value + "=" * (-len(value) % 4))
        except (ValueError, binascii.Error):
            continue
        if len(raw) == 32:
            return raw
    return hashlib.sha256(value.encode()).digest()


def _persisted_key(path: Path) -> bytes:
    """Like the JWT secret: generated once beside the embedded database (set ENCRYPTION_KEY for several hosts).

    Written to a temporary file and linked into place, so a concurrent reader never sees a half-written key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(os.urandom(32)).decode())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: use its key
        finally:
            tmp.unlink()
    return base64.b64decode(path.read_text().strip())


def mask_secret(value: str) -> str:
    """What a user may see of their key: its well-known prefix and last four characters."""
    return f"{value[:6]}...{value[-4:]}" if len(value) >= 16 else "..." + value[-2:]
