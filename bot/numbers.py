"""Whole numbers typed or tapped by patients and POHs, read without ever raising.

``str.isdigit()`` is true for "5²", "٣" and "①", which ``int()`` then refuses or reads as another
number, and SQLite refuses integers above 2**63 - 1: every number from outside goes through here.
"""

from __future__ import annotations

import re

MAX_ROW_ID = 2**63 - 1  # SQLite's largest INTEGER
_WHOLE = re.compile(r"-?[0-9]{1,30}")


def whole_number(text: str) -> int | None:
    """An ASCII whole number (an optional minus sign, at most 30 digits), else None."""
    word = text.strip()
    return int(word) if _WHOLE.fullmatch(word) else None


def row_id(text: str) -> int | None:
    """A record number as a POH types it ("12", "#12") or a button carries it; None when it cannot
    be one (not a number, zero or less, beyond what SQLite stores)."""
    number = whole_number(text.strip().removeprefix("#"))
    return number if number is not None and 0 < number <= MAX_ROW_ID else None


_TIME = re.compile(r"([0-9]{1,2})(?:[:.]([0-9]{2}))?(?: ?uur)?")


def parse_time(text: str) -> str | None:
    """``8``, ``8 uur``, ``8:30``, ``08.30`` -> ``08:30``; None when it is not a time of day."""
    match = _TIME.fullmatch(" ".join(text.casefold().strip().strip(".!?,").split()))
    if not match:
        return None
    hour, minute = int(match[1]), int(match[2] or 0)
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"
