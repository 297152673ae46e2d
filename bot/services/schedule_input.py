"""One reader for every schedule a person types or picks: the CLI (``plan action``), the POH's
``/actie`` in Telegram, the web plan editor and the patient's own plan flow.

What it reads: a kind (``daily``, ``once``, ``weekdays``, ``every_n_days``, a word for one of them
from ``schedule_words`` in messages.yaml, or a list of days such as ``ma,wo,vr``), a time of day
(``8``, ``8:30``, ``08.30``), optional start and end dates (``2026-12-01``), days by name or number
(0 = Monday) and "every N days". Anything it cannot use raises :class:`ScheduleError` whose ``key``
names the B1 message that says what to change; it never raises anything else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, time, timedelta

from bot.numbers import parse_time, whole_number
from scheduler.schedules import KINDS, Schedule

MAX_EVERY_DAYS = 365
FIRST_YEAR, LAST_YEAR = 2000, 2199  # far from date.max: adding a plan's duration never overflows
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_WITH_SECONDS = re.compile(r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}")


# The reasons a schedule is refused (message keys ``bad.<reason>``); the web shows only these.
SCHEDULE_REASONS = frozenset(
    {"schedule_time", "schedule_days", "schedule_every", "schedule_date", "schedule_end"}
)


class ScheduleError(ValueError):
    """``key`` names the message (``bad.schedule_*``) that explains the problem."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def word_kinds(schedule_words: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """``schedule_words`` from messages.yaml (kind -> words) as word -> kind, for ``words=``."""
    return {word: kind for kind, words in schedule_words.items() for word in words}


def read_schedule(
    kind: str,
    at: str,
    *,
    today: date,
    now: time,
    weekday_names: Sequence[str],
    words: Mapping[str, str] | None = None,
    days: Iterable[str] = (),
    start: str | None = None,
    until: str | None = None,
    every: str | None = None,
    lasting_days: int | None = None,
) -> Schedule:
    """A :class:`Schedule` from what was typed. ``today`` and ``now`` are local to the practice: a
    one-off at a time already past today is tomorrow. ``lasting_days`` ends it after that many days
    (the plan flow's "how long"), unless ``until`` is given."""
    moment = parse_time(_without_seconds(at))
    if moment is None:
        raise ScheduleError("bad.schedule_time")
    at_time = time.fromisoformat(moment)
    day_list = [d for d in days if d.strip()]
    word = kind.strip().casefold()
    word = (words or {}).get(word, word)
    if word not in KINDS:  # "ma,wo,vr": the days are the kind
        day_list += word.split(",")
        word = "weekdays"
    weekdays = _weekdays(day_list, weekday_names) if word == "weekdays" else frozenset()
    every_days = _every(every) if word == "every_n_days" else 1
    first = _date(start) if start else None
    end = _date(until) if until else None
    if first is None:
        first = today + timedelta(days=1) if word == "once" and at_time <= now else today
    if end is None and lasting_days and word != "once":
        end = first + timedelta(days=lasting_days - 1)
    try:
        return Schedule(word, at_time, first, end, weekdays, every_days)
    except ValueError:
        raise ScheduleError("bad.schedule_end") from None


def _weekdays(names: Iterable[str], weekday_names: Sequence[str]) -> frozenset[int]:
    prefixes = [n[:2].casefold() for n in weekday_names]
    found = set()
    for raw in names:
        name = raw.strip().casefold()
        number = whole_number(name)
        if number is not None and 0 <= number <= 6:
            found.add(number)
        elif len(name) >= 2 and name[:2] in prefixes:
            found.add(prefixes.index(name[:2]))
        else:
            raise ScheduleError("bad.schedule_days")
    if not found:
        raise ScheduleError("bad.schedule_days")
    return frozenset(found)


def _every(text: str | None) -> int:
    number = whole_number(text or "")
    if number is None or not 1 <= number <= MAX_EVERY_DAYS:
        raise ScheduleError("bad.schedule_every")
    return number


def _without_seconds(text: str) -> str:
    """``09:00:00`` (a browser's time field, a CLI user) -> ``09:00``; other text unchanged."""
    word = text.strip()
    return word[:-3] if _WITH_SECONDS.fullmatch(word) else word


def _date(text: str) -> date:
    """``2027-01-15`` only (Python also reads ``20270115`` and ``2027-W03-5``), years 2000-2199."""
    word = text.strip()
    if not _ISO_DATE.fullmatch(word) or not FIRST_YEAR <= int(word[:4]) <= LAST_YEAR:
        raise ScheduleError("bad.schedule_date")
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise ScheduleError("bad.schedule_date") from None
