"""Property tests: every parser of patient or POH input gives a value or a kind B1 reason (a
message key in the catalog), whatever string it gets - never an exception."""

from __future__ import annotations

import copy
import re
from datetime import date, time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.content import Catalog
from bot.flows.engine import FlowContext, FlowEngine, FlowState
from bot.flows.model import Choice, Text
from bot.numbers import MAX_ROW_ID, parse_time, row_id, whole_number
from bot.services import measurements
from bot.services.reminders import parse_data
from bot.services.safety import CheckTap
from bot.services.schedule_input import ScheduleError, read_schedule, word_kinds
from bot.telegram.handlers import parse_choice
from scheduler.schedules import Schedule

CATALOG = Catalog()
WORDS = word_kinds(CATALOG.raw("schedule_words"))
# Any text, plus the kinds of text people really send to these parsers.
TEXT = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"[0-9 :.,/#+-]{0,12}", fullmatch=True),
    st.sampled_from(["5²", "٣", "①", "9" * 40, "08:30", "8 uur", "135/85", "ma,wo,vr", "\x00", "‮"]),
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(TEXT)
def test_numbers_are_a_value_or_none(text: str) -> None:
    number = whole_number(text)
    assert (number is None) == (re.fullmatch(r"-?[0-9]{1,30}", text.strip()) is None)
    rid = row_id(text)
    assert rid is None or 0 < rid <= MAX_ROW_ID


@SETTINGS
@given(TEXT)
def test_a_time_is_a_clock_time_or_none(text: str) -> None:
    moment = parse_time(text)
    assert moment is None or time.fromisoformat(moment).strftime("%H:%M") == moment


@SETTINGS
@given(st.sampled_from(sorted(measurements.KINDS)), TEXT)
def test_a_measurement_is_numbers_or_a_reason(kind: str, text: str) -> None:
    try:
        values = measurements.parse(kind, text)
    except measurements.MeasurementError as exc:
        assert CATALOG.t(exc.key)
    else:
        assert len(values) == measurements.KINDS[kind].parts


def _read(kind: str, at: str, **given: Any) -> Schedule:
    """read_schedule as the POH's chat calls it, on Thursday 3 December 2026 at noon."""
    today, noon, names = date(2026, 12, 3), time(12, 0), CATALOG.raw("weekdays")
    return read_schedule(kind, at, today=today, now=noon, weekday_names=names, words=WORDS, **given)


DATES = st.one_of(st.none(), TEXT, st.dates().map(date.isoformat))
TIMES = st.one_of(TEXT, st.times().map(lambda t: t.strftime("%H:%M")), st.times().map(time.isoformat))
DAY_WORDS = st.sampled_from(["ma", "di", "wo", "do", "vr", "za", "zo", "0", "6", "7"])
DAYS = st.lists(st.one_of(TEXT, DAY_WORDS), max_size=3)


@SETTINGS
@given(TEXT, TIMES, DAYS, DATES, DATES, st.one_of(TEXT, st.integers(-5, 400).map(str)))
def test_a_schedule_is_read_or_refused_with_a_reason(
    kind: str, at: str, days: list[str], start: str | None, until: str | None, every: str
) -> None:
    for k in (kind, "weekdays", "every_n_days", "once"):
        try:
            schedule = _read(k, at, days=days, start=start, until=until, every=every)
        except ScheduleError as exc:
            assert CATALOG.t(exc.key)
        else:
            assert schedule.end is None or schedule.end >= schedule.start


@pytest.mark.parametrize(
    ("kind", "at", "days", "expected"),
    [
        ("dagelijks", "8", [], ("daily", "08:00", frozenset())),
        ("ma,wo,vr", "09.30", [], ("weekdays", "09:30", frozenset({0, 2, 4}))),
        ("weekdays", "7:05", ["di", "zondag"], ("weekdays", "07:05", frozenset({1, 6}))),
        ("weekdays", "7:05", ["1", "6"], ("weekdays", "07:05", frozenset({1, 6}))),
    ],
)
def test_one_reader_for_every_way_of_writing_a_schedule(
    kind: str, at: str, days: list[str], expected: tuple[str, str, frozenset[int]]
) -> None:
    schedule = _read(kind, at, days=days)
    assert (schedule.kind, schedule.at.strftime("%H:%M"), schedule.weekdays) == expected


def test_a_one_off_at_a_time_already_past_is_tomorrow() -> None:
    assert _read("once", "11:00").start == date(2026, 12, 4)  # noon has passed 11:00: tomorrow
    assert _read("once", "13:00").start == date(2026, 12, 3)


@SETTINGS
@given(st.one_of(TEXT, st.text(alphabet="r:0123456789abcdefyn-", max_size=40)))
def test_callback_data_is_parsed_or_refused(data: str) -> None:
    choice = parse_choice(data)
    assert isinstance(choice.seq, int) and isinstance(choice.value, str)
    parsed = parse_data(data)
    assert parsed is None or 0 < parsed[0] <= MAX_ROW_ID
    tap = CheckTap.parse("sc:" + data)
    assert tap is None or isinstance(tap.yes, bool)


def _states_at_every_step(engine: FlowEngine, ctx: FlowContext, pick: int) -> list[FlowState]:
    """Walk the flow as a patient would (option number ``pick``, a few words) and keep the
    state at each step reached, so each question sees the answers before it."""
    from bot.flows.engine import DONE
    from bot.flows.steps import BACK, FINISH, SKIP

    result = engine.start(ctx)
    seen: dict[str, FlowState] = {}
    for _ in range(200):
        state = result.state
        if state.step == DONE:
            break
        seen.setdefault(state.step, copy.deepcopy(state))
        if engine.takes_free_text(state):
            result = engine.handle(state, Text("Meer wandelen met de hond"), ctx)
            continue
        values = [b.value for row in result.messages[-1].buttons for b in row]
        if FINISH in values and state.draft:
            value = FINISH
        elif engine.steps[[s.key for s in engine.steps].index(state.step)].spec.closes_history:
            value = "yes"  # consent: a no ends the walk
        else:
            options = [v for v in values if v not in (BACK, SKIP, FINISH, *state.draft)]
            value = options[min(pick, len(options) - 1)]
        result = engine.handle(state, Choice(state.seq, value), ctx)
    return list(seen.values())


@pytest.fixture(scope="module")
def walked() -> list[tuple[FlowEngine, FlowContext, FlowState]]:
    out = []
    engines = [FlowEngine(CATALOG, "intake"), FlowEngine(CATALOG, "plan")]
    for aloud, simple in ((None, None), (False, False), (False, True)):  # None: not asked yet
        ctx = FlowContext("De Linde", "dinsdag 1 december om 14:30", aloud, simple)
        for engine in engines:
            for pick in (0, 1, 2):  # 0: low scores and the first option; 1, 2: other branches
                out += [(engine, ctx, state) for state in _states_at_every_step(engine, ctx, pick)]
    return out


def test_the_walk_reaches_every_step(walked: list[tuple[FlowEngine, FlowContext, FlowState]]) -> None:
    for engine in {e.flow: e for e, _, _ in walked}.values():
        reached = {state.step for e, _, state in walked if e.flow == engine.flow}
        assert reached == {s.key for s in engine.steps if not s.spec.ends_flow}


@settings(max_examples=25, deadline=None)
@given(text=TEXT, value=TEXT)
def test_every_step_answers_any_text_or_tap_with_a_message(
    walked: list[tuple[FlowEngine, FlowContext, FlowState]], text: str, value: str
) -> None:
    for engine, ctx, state in walked:
        for inp in (Text(text), Choice(state.seq, value)):
            result = engine.handle(copy.deepcopy(state), inp, ctx)
            assert result.messages or result.toast, (state.step, inp)
