"""Time is injected: everything that reads the clock takes a :class:`Clock`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock for tests and simulations: stands still until moved."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)


class SimulatedClock:
    """Starts at a given moment and runs ``speed`` times faster (demos and end-to-end tests)."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        self._start = start.astimezone(UTC)
        self._origin = monotonic()
        self._speed = speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(monotonic() - self._origin) * self._speed)


def iso(moment: datetime) -> str:
    """UTC ISO-8601 text as stored in the database (sorts as time)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not stored")
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


__all__ = ["UTC", "Clock", "FrozenClock", "SimulatedClock", "SystemClock", "from_iso", "iso", "timedelta"]
