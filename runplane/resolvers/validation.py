"""Input checks shared by resolvers; each failure is an InvalidInput naming the field."""

from __future__ import annotations

import uuid
from enum import StrEnum

from runplane.errors import InvalidInput, NotFound

# An id as a transport hands it over: a string (a REST path segment or body field, a GraphQL ID) or the UUID a
# GraphQL global id decoded to. Operations check it with parse_uuid: a malformed one matches nothing (404).
RawId = str | uuid.UUID


def parse_uuid(value: object, what: str) -> uuid.UUID:
    """A malformed id is simply an id that matches nothing: 404, like another user's object."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str) or len(value) > 64:
        raise NotFound(f"{what} not found")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{what} not found") from None


def clean_text(value: object, field: str, *, max_length: int, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    text = value.strip()
    if required and not text:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(text) > max_length:
        raise InvalidInput(f"{field} must be at most {max_length} characters", field=field)
    if "\x00" in text:
        raise InvalidInput(f"{field} must not contain NUL characters", field=field)
    if not text.isascii() and _has_surrogates(text):
        # JSON allows lone surrogates ("\\ud800"); no database can store them as UTF-8.
        raise InvalidInput(f"{field} must be valid Unicode text", field=field)
    return text


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def clean_choice(value: object, field: str, choices: type[StrEnum], *, default: StrEnum) -> str:
    """One of a StrEnum's values; None (not given) is the default."""
    if value is None or value == "":
        return default.value
    if not isinstance(value, str) or value not in choices._value2member_map_:
        allowed = ", ".join(member.value for member in choices)
        raise InvalidInput(f"{field} must be one of {allowed}", field=field)
    return value


def clean_limit(first: object, *, default: int = 20, maximum: int = 100) -> int:
    if first is None:
        return default
    if not isinstance(first, int) or isinstance(first, bool) or not 1 <= first <= maximum:
        raise InvalidInput(f"first must be an integer between 1 and {maximum}", field="first")
    return first


def required_id(value: object, field: str, what: str) -> uuid.UUID:
    """A missing id or one of the wrong JSON type is an input error (422); a malformed or unknown one is NotFound
    (404)."""
    if value is None or value == "":
        raise InvalidInput(f"{field} is required", field=field)
    if not isinstance(value, (str, uuid.UUID)):
        raise InvalidInput(f"{field} must be a string", field=field)
    return parse_uuid(value, what)
