"""When is a reminder due? Pure schedule arithmetic, correct across daylight-saving changes.

A schedule is stated in the patient's wall-clock time (default Europe/Amsterdam): "daily at
08:00" stays 08:00 local in winter and summer. Times are returned in UTC, as stored.
- A wall time that does not exist (the spring-forward gap, 02:00-03:00 on the last Sunday of
  March) moves to the same distance after the gap (02:30 -> 03:30).
- A wall time that exists twice (the fall-back hour on the last Sunday of October) is taken
  once, the first time (before the clocks go back).
- Quiet hours (default 21:30-08:00, per patient) move a reminder to the end of the quiet period.

Nothing here reads the clock: callers pass ``after``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

KINDS = ("once", "daily", "weekdays", "every_n_days")


@dataclass(frozen=True)
class QuietHours:
    start: time = time(21, 30)
    end: time = time(8, 0)

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # spans midnight


@dataclass(frozen=True)
class Schedule:
    kind: str
    at: time
    start: date
    end: date | None = None  # last day on which it may be due; None is open-ended
    weekdays: frozenset[int] = field(default_factory=frozenset)  # 0 = Monday
    every_days: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown schedule kind {self.kind!r}")
        if self.kind == "weekdays" and not self.weekdays:
            raise ValueError("a weekdays schedule needs at least one weekday")
        if not all(0 <= d <= 6 for d in self.weekdays):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        if self.every_days < 1:
            raise ValueError("every_days must be at least 1")
        if self.end is not None and self.end < self.start:
            raise ValueError("the end date is before the start date")

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "at": self.at.strftime("%H:%M"),
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "weekdays": sorted(self.weekdays),
            "every_days": self.every_days,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Schedule:
        end = data.get("end")
        return cls(
            kind=str(data["kind"]),
            at=time.fromisoformat(str(data["at"])),
            start=date.fromisoformat(str(data["start"])),
            end=date.fromisoformat(str(end)) if end else None,
            weekdays=frozenset(int(d) for d in cast("list[int]", data.get("weekdays") or [])),
            every_days=int(cast("int", data.get("every_days") or 1)),
        )

    def on(self, day: date) -> bool:
        """Is a reminder planned on this local date?"""
        if day < self.start or (self.end is not None and day > self.end):
            return False
        if self.kind == "once":
            return day == self.start
        if self.kind == "daily":
            return True
        if self.kind == "weekdays":
            return day.weekday() in self.weekdays
        return (day - self.start).days % self.every_days == 0


def to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC moment of a local wall time; gaps move forward, repeated hours take the first."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0)
    # A time in the spring-forward gap does not survive a round trip through UTC.
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        offset_before = first.utcoffset() or timedelta(0)
        return (naive - offset_before).replace(tzinfo=UTC)
    return first.astimezone(UTC)


def respect_quiet(moment: datetime, zone: ZoneInfo, quiet: QuietHours | None) -> datetime:
    """Move a UTC moment out of the quiet hours to the first allowed local time."""
    if quiet is None:
        return moment
    local = moment.astimezone(zone)
    if not quiet.contains(local.time()):
        return moment
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)  # late evening: the quiet period ends tomorrow morning
    return to_utc(day, quiet.end, zone)


def occurrences(
    schedule: Schedule,
    after: datetime,
    zone: ZoneInfo,
    quiet: QuietHours | None = None,
    limit: int = 1000,
) -> Iterator[datetime]:
    """Due moments (UTC) strictly after ``after``, in order, at most ``limit`` of them."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    day = max(schedule.start, after.astimezone(zone).date() - timedelta(days=1))
    produced = 0
    last: datetime | None = None
    while produced < limit and (schedule.end is None or day <= schedule.end):
        if schedule.on(day):
            due = respect_quiet(to_utc(day, schedule.at, zone), zone, quiet)
            if due > after and (last is None or due > last):
                yield due
                produced += 1
                last = due
        if schedule.kind == "once" and day >= schedule.start:
            return
        day += timedelta(days=1)


def next_due(
    schedule: Schedule, after: datetime, zone: ZoneInfo, quiet: QuietHours | None = None
) -> datetime | None:
    return next(occurrences(schedule, after, zone, quiet, limit=1), None)
