"""Schedule arithmetic across days, weeks, both daylight-saving changes, quiet hours, end dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.schedules import QuietHours, Schedule, next_due, occurrences, respect_quiet, to_utc

AMS = ZoneInfo("Europe/Amsterdam")


def local(moments: list[datetime]) -> list[str]:
    return [m.astimezone(AMS).strftime("%a %Y-%m-%d %H:%M") for m in moments]


def test_daily_keeps_wall_time_across_spring_forward() -> None:
    s = Schedule("daily", time(8, 0), date(2026, 3, 27))
    got = list(occurrences(s, datetime(2026, 3, 26, tzinfo=UTC), AMS, limit=4))
    assert local(got) == [
        "Fri 2026-03-27 08:00",
        "Sat 2026-03-28 08:00",
        "Sun 2026-03-29 08:00",
        "Mon 2026-03-30 08:00",
    ]
    assert [g.hour for g in got] == [7, 7, 6, 6]  # UTC shifts by an hour, the patient's time does not
    assert got[3] - got[2] == timedelta(hours=24)
    assert got[2] - got[1] == timedelta(hours=23)  # the short night


def test_daily_keeps_wall_time_across_fall_back() -> None:
    s = Schedule("daily", time(20, 0), date(2026, 10, 24))
    got = list(occurrences(s, datetime(2026, 10, 24, tzinfo=UTC), AMS, limit=2))
    assert local(got) == ["Sat 2026-10-24 20:00", "Sun 2026-10-25 20:00"]
    assert got[1] - got[0] == timedelta(hours=25)


def test_time_in_the_spring_gap_moves_forward() -> None:
    assert to_utc(date(2026, 3, 29), time(2, 30), AMS) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert to_utc(date(2026, 3, 29), time(2, 30), AMS).astimezone(AMS).strftime("%H:%M") == "03:30"


def test_repeated_hour_is_taken_once_the_first_time() -> None:
    s = Schedule("daily", time(2, 30), date(2026, 10, 24), end=date(2026, 10, 26))
    got = list(occurrences(s, datetime(2026, 10, 23, tzinfo=UTC), AMS))
    assert len(got) == 3
    assert got[1] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 summer time, before the clocks go back


def test_weekdays_and_end_date() -> None:
    s = Schedule(
        "weekdays", time(9, 15), date(2026, 11, 23), end=date(2026, 12, 6), weekdays=frozenset({0, 3})
    )
    got = list(occurrences(s, datetime(2026, 11, 1, tzinfo=UTC), AMS))
    assert local(got) == [
        "Mon 2026-11-23 09:15",
        "Thu 2026-11-26 09:15",
        "Mon 2026-11-30 09:15",
        "Thu 2026-12-03 09:15",
    ]


def test_every_n_days_counts_from_the_start() -> None:
    s = Schedule("every_n_days", time(10, 0), date(2026, 11, 20), every_days=3)
    got = list(occurrences(s, datetime(2026, 11, 23, 12, tzinfo=UTC), AMS, limit=3))
    assert local(got) == ["Thu 2026-11-26 10:00", "Sun 2026-11-29 10:00", "Wed 2026-12-02 10:00"]


def test_once() -> None:
    s = Schedule("once", time(14, 0), date(2026, 12, 1))
    assert local(list(occurrences(s, datetime(2026, 11, 1, tzinfo=UTC), AMS))) == ["Tue 2026-12-01 14:00"]
    assert next_due(s, datetime(2026, 12, 1, 14, tzinfo=UTC), AMS) is None  # already past


def test_quiet_hours_move_to_the_morning() -> None:
    quiet = QuietHours()
    late = Schedule("daily", time(22, 0), date(2026, 11, 23))
    early = Schedule("daily", time(6, 45), date(2026, 11, 23))
    assert local([next_due(late, datetime(2026, 11, 23, tzinfo=UTC), AMS, quiet)]) == ["Tue 2026-11-24 08:00"]
    assert local([next_due(early, datetime(2026, 11, 23, tzinfo=UTC), AMS, quiet)]) == [
        "Mon 2026-11-23 08:00"
    ]
    own = QuietHours(time(13, 0), time(14, 30))  # a patient's own afternoon rest
    noon = Schedule("daily", time(13, 30), date(2026, 11, 23))
    assert local([next_due(noon, datetime(2026, 11, 23, tzinfo=UTC), AMS, own)]) == ["Mon 2026-11-23 14:30"]


def test_quiet_morning_on_the_spring_forward_day() -> None:
    moved = respect_quiet(to_utc(date(2026, 3, 29), time(2, 30), AMS), AMS, QuietHours())
    assert local([moved]) == ["Sun 2026-03-29 08:00"]


def test_late_evening_and_morning_of_one_schedule_do_not_collapse_twice() -> None:
    s = Schedule("daily", time(23, 0), date(2026, 11, 23))
    got = list(occurrences(s, datetime(2026, 11, 23, tzinfo=UTC), AMS, QuietHours(), limit=3))
    assert local(got) == ["Tue 2026-11-24 08:00", "Wed 2026-11-25 08:00", "Thu 2026-11-26 08:00"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "hourly"},
        {"kind": "weekdays"},
        {"kind": "every_n_days", "every_days": 0},
        {"kind": "daily", "end": date(2026, 1, 1)},
        {"kind": "weekdays", "weekdays": frozenset({7})},
    ],
)
def test_invalid_schedules(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"at": time(8), "start": date(2026, 11, 23)}
    with pytest.raises(ValueError):
        Schedule(**{**base, **kwargs})  # type: ignore[arg-type]


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError):
        next(occurrences(Schedule("daily", time(8), date(2026, 11, 23)), datetime(2026, 11, 23), AMS))
