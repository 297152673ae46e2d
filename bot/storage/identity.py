"""A per-update identity map: inside ``scope()`` each row a repository reads is kept, so the same
patient (or practice) is read from SQLite once per update, however many services ask for it.

Writes through a repository forget the row at once, a rolled-back transaction forgets everything,
and nothing outlives the scope (one update). Outside a scope nothing is kept.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Key = tuple[str, Any]

_rows: contextvars.ContextVar[dict[Key, Any] | None] = contextvars.ContextVar("identity", default=None)


@contextmanager
def scope() -> Iterator[None]:
    """An identity map for the code inside (a nested scope joins the outer one)."""
    if _rows.get() is not None:
        yield
        return
    token = _rows.set({})
    try:
        yield
    finally:
        _rows.reset(token)


def lookup(key: Key) -> tuple[bool, Any]:
    """(found, value) for ``key`` in the current scope."""
    rows = _rows.get()
    if rows is None or key not in rows:
        return False, None
    return True, rows[key]


def remember(key: Key, value: Any) -> None:
    rows = _rows.get()
    if rows is not None:
        rows[key] = value


def forget(key: Key) -> None:
    rows = _rows.get()
    if rows is not None:
        rows.pop(key, None)


def forget_all() -> None:
    """After a rollback: what was read inside the transaction may never have been committed."""
    rows = _rows.get()
    if rows is not None:
        rows.clear()
