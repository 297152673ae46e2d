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
