"""Split a free-text answer that lists several things into separate items."""

from __future__ import annotations

import re

_BULLET = re.compile(r"^\s*(?:[-*•·–]|\d{1,2}[.)]|[a-z][.)])\s+", re.IGNORECASE)
_SEPARATORS = re.compile(r"\s*(?:\n|;|\s\+\s)\s*")
_COMMA = re.compile(r"\s*,\s*")


def split_items(text: str, *, max_items: int = 10) -> list[str]:
    """Items from a list-like answer: one per line, bullet or semicolon.

    A single line with commas is split on the commas only when every part is short
    (a list of topics); a normal sentence with a comma stays whole.
    """
    parts = [p for p in _SEPARATORS.split(text.strip()) if p.strip()]
    if len(parts) == 1:
        commas = [p for p in _COMMA.split(parts[0]) if p.strip()]
        if len(commas) > 1 and all(len(p.split()) <= 4 for p in commas):
            parts = commas
    items: list[str] = []
    seen: set[str] = set()
    for part in parts:
        item = _BULLET.sub("", part).strip().rstrip(".").strip()
        key = item.casefold()
        if item and key not in seen:
            seen.add(key)
            items.append(item)
    return items[:max_items]
