"""Is the bot healthy? One answer for ``python -m bot health`` and ``GET /healthz``.

Checks: the database answers and takes a write, its migrations match this code, the scheduler
finished a tick recently, the outbox has no old due rows, Telegram answers ``getMe``. Each check
says ``ok``, ``fail`` or ``unknown`` (not checked: no token, or the database is gone); the whole is
healthy when nothing failed. The report holds figures and reasons only, never patient data.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.clock import Clock, SystemClock, iso
from bot.storage.ports import Health

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
TELEGRAM_CACHE_SECONDS = 30.0  # a monitor polling /healthz does not make a getMe call each time

TelegramProbe = Callable[[float], Awaitable[None]]  # raises TelegramUnreachable (timeout in seconds)


class TelegramUnreachable(Exception):
    """Why ``getMe`` did not answer ok, in words without the token."""


@dataclass(frozen=True)
class Thresholds:
    max_tick_age: timedelta = timedelta(minutes=5)
    max_outbox_age: timedelta = timedelta(minutes=15)
    timeout: float = 3.0  # seconds for the test write and for Telegram


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, **self.figures}


@dataclass(frozen=True)
class Report:
    checks: list[Check]
    checked_at: str

    @property
    def healthy(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": OK if self.healthy else FAIL,
            "checked_at": self.checked_at,
            "checks": {c.name: c.to_json() for c in self.checks},
        }

    def lines(self) -> list[str]:
        width = max(len(c.name) for c in self.checks)
        out = [f"{c.name:<{width}}  {c.status:<7}  {c.detail}" for c in self.checks]
        out.append("healthy" if self.healthy else "UNHEALTHY")
        return out


def _seconds(delta: timedelta) -> float:
    return round(delta.total_seconds(), 1)


def _describe(exc: BaseException) -> str:
    """A storage error in short words (SQLite's messages name no values); a timeout by its length."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc).splitlines()[0][:120] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class HealthService:
    """``store``: the health port of an open database, or None when it could not be opened
    (``missing`` says why). ``clock`` is the bot's clock (outbox due times are in it); heartbeats
    are wall-clock times, so they are compared with ``wall``."""

    def __init__(
        self,
        store: Health | None,
        clock: Clock,
        thresholds: Thresholds,
        telegram: TelegramProbe | None,
        *,
        missing: str = "the database could not be opened",
        wall: Clock | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.thresholds = thresholds
        self.telegram = telegram
        self.missing = missing
        self.wall = wall or SystemClock()
        self._telegram_seen: tuple[float, Check] | None = None

    async def report(self) -> Report:
        database = await self._database()
        if database.status == OK:
            storage = [await self._guard(name, check) for name, check in self._storage_checks()]
        else:
            storage = [Check(name, UNKNOWN, "database not reachable") for name, _ in self._storage_checks()]
        return Report([database, *storage, await self._telegram()], iso(self.wall.now()))

    def _storage_checks(self) -> list[tuple[str, Callable[[Health], Awaitable[Check]]]]:
        return [("migrations", self._migrations), ("scheduler", self._scheduler), ("outbox", self._outbox)]

    async def _guard(self, name: str, check: Callable[[Health], Awaitable[Check]]) -> Check:
        assert self.store is not None
        try:
            return await asyncio.wait_for(check(self.store), self.thresholds.timeout)
        except Exception as exc:
            return Check(name, FAIL, _describe(exc))

    async def _database(self) -> Check:
        if self.store is None:
            return Check("database", FAIL, self.missing)
        start = time.perf_counter()
        try:
            await asyncio.wait_for(self.store.beat("health", self.wall.now()), self.thresholds.timeout)
        except Exception as exc:
            return Check("database", FAIL, f"the test write failed ({_describe(exc)})", {"writable": False})
        took = round((time.perf_counter() - start) * 1000, 1)
        return Check(
            "database", OK, f"reachable and writable ({took:g} ms)", {"writable": True, "write_ms": took}
        )

    async def _migrations(self, store: Health) -> Check:
        applied, known = await store.schema()
        figures = {"applied": max(applied, default=0), "expected": max(known, default=0)}
        missing = sorted(set(known) - set(applied))
        unknown = sorted(set(applied) - set(known))
        if unknown:
            return Check(
                "migrations", FAIL, f"the database is newer than this code (migration {unknown[-1]})", figures
            )
        if missing:
            return Check(
                "migrations",
                FAIL,
                f"{len(missing)} not applied (from {missing[0]}): restart the bot to apply them",
                figures,
            )
        return Check("migrations", OK, f"current ({figures['applied']})", figures)

    async def _scheduler(self, store: Health) -> Check:
        limit = _seconds(self.thresholds.max_tick_age)
        last = await store.last_beat("scheduler")
        if last is None:
            return Check("scheduler", FAIL, "no tick recorded yet (is `python -m bot run` running?)", {})
        age = _seconds(self.wall.now() - last)
        figures = {"last_tick_age_s": age, "max_age_s": limit}
        if age > limit:
            return Check("scheduler", FAIL, f"last tick {age:g} s ago (more than {limit:g} s)", figures)
        return Check("scheduler", OK, f"last tick {age:g} s ago", figures)

    async def _outbox(self, store: Health) -> Check:
        limit = _seconds(self.thresholds.max_outbox_age)
        now = self.clock.now()
        due, oldest = await store.outbox_backlog(now)
        age = _seconds(now - oldest) if oldest is not None else 0.0
        figures = {"pending_due": due, "oldest_age_s": age, "max_age_s": limit}
        if due == 0:
            return Check("outbox", OK, "nothing waiting", figures)
        text = f"{due} due, the oldest waiting {age:g} s"
        if age > limit:
            return Check("outbox", FAIL, f"{text} (more than {limit:g} s)", figures)
        return Check("outbox", OK, text, figures)

    async def _telegram(self) -> Check:
        if self.telegram is None:
            return Check("telegram", UNKNOWN, "not checked: no BOT_TOKEN")
        seen = self._telegram_seen
        if seen is not None and time.monotonic() - seen[0] < TELEGRAM_CACHE_SECONDS:
            return seen[1]
        try:
            await asyncio.wait_for(self.telegram(self.thresholds.timeout), self.thresholds.timeout + 1)
            check = Check("telegram", OK, "getMe answered")
        except TelegramUnreachable as exc:
            check = Check("telegram", FAIL, f"getMe failed: {exc}")
        except TimeoutError:
            check = Check("telegram", FAIL, f"getMe failed: no answer within {self.thresholds.timeout:g} s")
        except Exception as exc:  # never the message: it could hold the URL with the token
            check = Check("telegram", FAIL, f"getMe failed: {type(exc).__name__}")
        self._telegram_seen = (time.monotonic(), check)
        return check
