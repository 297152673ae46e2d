"""A per-update identity map: inside ``scope()`` each row a repository reads is kept, so the same
patient (or practice) is read from SQLite once per update, however many services ask for it.

Writes through a repository forget the row at once, a rolled-back transaction forgets everything,
and nothing outlives the scope (one update). Outside a scope nothing is kept.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Key = tuple[str, Any]

# (the task that opened the scope, its rows): a task started inside a scope inherits the context
# variable but not the map, so it never reads, fills or clears another task's rows.
_scope: contextvars.ContextVar[tuple[object, dict[Key, Any]] | None] = contextvars.ContextVar(
    "identity", default=None
)


def _rows() -> dict[Key, Any] | None:
    held = _scope.get()
    return held[1] if held is not None and held[0] is _task() else None


def _task() -> object:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop: plain code, one "task"
        return None


@contextmanager
def scope() -> Iterator[None]:
    """An identity map for the code inside (a nested scope in the same task joins the outer one)."""
    if _rows() is not None:
        yield
        return
    token = _scope.set((_task(), {}))
    try:
        yield
    finally:
        _scope.reset(token)


def lookup(key: Key) -> tuple[bool, Any]:
    """(found, value) for ``key`` in the current scope."""
    rows = _rows()
    if rows is None or key not in rows:
        return False, None
    return True, rows[key]


def remember(key: Key, value: Any) -> None:
    rows = _rows()
    if rows is not None:
        rows[key] = value


def forget(key: Key) -> None:
    rows = _rows()
    if rows is not None:
        rows.pop(key, None)


def forget_all() -> None:
    """After a write to what the map keeps, or a rollback: what was read inside the transaction
    may never have been committed."""
    rows = _rows()
    if rows is not None:
        rows.clear()
