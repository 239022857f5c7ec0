"""Secrets at rest: AES-256-GCM with a random nonce per value and the owner bound in as associated data,
so a ciphertext copied onto another user's row does not decrypt.

Ciphertexts name the key that sealed them (`v2:<key id>:<base64>`), so a key ring can hold the current key and
the previous ones (RUNPLANE_ENCRYPTION_PREVIOUS_KEYS) while `runplane rotate-encryption-key` re-encrypts the
stored values. `v1:<base64>` values (no key id, before rotation existed) still decrypt with any key of the ring.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from runplane.config import Settings

VERSION = "v2"
LEGACY_VERSION = "v1"
NONCE_BYTES = 12
KEY_FILE = "encryption-key"
# scrypt for passphrases (RFC 7914 parameters for interactive use, ~0.1 s once per process). The salt is fixed
# because every process of a deployment must derive the same key from the same passphrase; it separates
# runplane's keys from any other use of the passphrase.
SCRYPT_SALT = b"runplane/encryption-key/v2"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


class DecryptionFailed(Exception):
    """Wrong key (RUNPLANE_ENCRYPTION_KEY changed?) or a tampered value."""


def key_id(key: bytes) -> str:
    """A short public name of a key: a hash of it, never the key."""
    return hashlib.sha256(b"runplane key id\0" + key).hexdigest()[:16]


class SecretBox:
    """Encrypts with the first key; decrypts with whichever key of the ring sealed the value."""

    def __init__(self, key: bytes, *previous: bytes, legacy: tuple[bytes, ...] = ()) -> None:
        self._keys = {key_id(k): AESGCM(k) for k in (key, *previous)}
        self.current_id = key_id(key)
        # v1 values name no key: try every key, and the bare sha256 of passphrases that v1 used.
        self._legacy = [AESGCM(k) for k in (key, *previous, *legacy)]

    def encrypt(self, plaintext: str, associated: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.current_id].encrypt(nonce, plaintext.encode(), associated.encode())
        return f"{VERSION}:{self.current_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, associated: str) -> str:
        version, _, rest = token.partition(":")
        if version == VERSION:
            kid, _, payload = rest.partition(":")
            if kid not in self._keys:
                raise DecryptionFailed(f"sealed with key {kid!r}, which is not in RUNPLANE_ENCRYPTION_(PREVIOUS_)KEY")
            return _open([self._keys[kid]], payload, associated)
        if version == LEGACY_VERSION:
            return _open(self._legacy, rest, associated)
        raise DecryptionFailed(f"unknown ciphertext version {version!r}")

    def is_current(self, token: str) -> bool:
        """Sealed with the current key (rotation leaves it alone)."""
        return token.startswith(f"{VERSION}:{self.current_id}:")


def is_sealed(value: str) -> bool:
    """A ciphertext of either version (a column that once held plain text tells the two apart)."""
    return value.startswith((f"{VERSION}:", f"{LEGACY_VERSION}:"))


def _open(candidates: list[AESGCM], payload: str, associated: str) -> str:
    try:
        raw = base64.b64decode(payload, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise DecryptionFailed("secret could not be decrypted") from exc
    for aead in candidates:
        try:
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated.encode()).decode()
        except (InvalidTag, ValueError):
            continue
    raise DecryptionFailed("secret could not be decrypted")


def secret_box(settings: Settings) -> SecretBox:
    return _box(settings.encryption_key, settings.encryption_previous_keys, str(settings.data_dir))


@lru_cache(maxsize=8)
def _box(configured: str | None, previous: tuple[str, ...], data_dir: str) -> SecretBox:
    current = key_from_setting(configured) if configured else _persisted_key(Path(data_dir) / KEY_FILE)
    legacy = tuple(_legacy_key(value) for value in (configured, *previous) if value and _raw_key(value) is None)
    return SecretBox(current, *(key_from_setting(value) for value in previous), legacy=legacy)


def key_from_setting(value: str) -> bytes:
    """A base64 value of exactly 32 bytes is the key itself; any other string is a passphrase, stretched by
    scrypt (a bare hash of a guessable passphrase would be as guessable)."""
    raw = _raw_key(value)
    if raw is not None:
        return raw
    return Scrypt(salt=SCRYPT_SALT, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(value.encode())


def _raw_key(value: str) -> bytes | None:
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(value + "=" * (-len(value) % 4))
        except (ValueError, binascii.Error):
            continue
        if len(raw) == 32:
            return raw
    return None


def _legacy_key(passphrase: str) -> bytes:
    """How v1 turned a passphrase into a key: only ever used to decrypt v1 values."""
    return hashlib.sha256(passphrase.encode()).digest()


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
