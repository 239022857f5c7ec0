"""Opaque global ids: base64("Type:uuid"). Inputs also accept the bare UUID the REST routes use."""

from __future__ import annotations

import base64
import binascii
import uuid

import strawberry

from runplane.errors import NotFound


def to_global_id(type_name: str, raw_id: uuid.UUID | str) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{raw_id}".encode()).decode().rstrip("="))


def from_global_id(value: str, expected_type: str) -> uuid.UUID:
    """The UUID inside `value`; NotFound when it is malformed or names another type."""
    if not isinstance(value, str) or len(value) > 200:
        raise NotFound(f"{expected_type} not found")
    try:
        return uuid.UUID(value)
    except ValueError:
        pass
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        type_name, raw = decoded.split(":", 1)
        if type_name == expected_type:
            return uuid.UUID(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise NotFound(f"{expected_type} not found")


def decode_any_global_id(value: str) -> tuple[str, uuid.UUID] | None:
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        type_name, raw = decoded.split(":", 1)
        return type_name, uuid.UUID(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
