"""Integers from client text: ASCII digits only.

`str.isdigit()` is true for "²" and "٣" and `int()` accepts "٣", "１２", " 7 " and "1_000": an isdigit-then-int
check either raises on a superscript (a 500) or lets look-alike spellings through. Every integer a client sends
(query parameters, Last-Event-ID, webhook timestamps) is parsed here instead.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def ascii_int(raw: str | bytes, *, max_digits: int = 18, signed: bool = False) -> int | None:
    """The integer spelled by `raw` in ASCII digits (with one leading "-" when `signed`), else None.

    `max_digits` bounds the work and the value before anything compares it; no other spelling (spaces,
    "+", underscores, non-ASCII digits) is accepted."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    negative = signed and text.startswith("-")
    digits = text[1:] if negative else text
    if len(digits) > max_digits or not _DIGITS.fullmatch(digits):
        return None
    value = int(digits)
    return -value if negative else value
