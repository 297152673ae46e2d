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

from bot.callbacks import (
    FAMILIES,
    AgendaTap,
    ButtonData,
    CheckTap,
    EraseTap,
    QuestionTap,
    ReminderOp,
    ReminderTap,
    ReplayTap,
    TranscriptTap,
    family_of,
)
from bot.content import Catalog
from bot.flows.engine import FlowContext, FlowEngine, FlowState
from bot.flows.model import Choice, Text
from bot.numbers import MAX_ROW_ID, parse_time, row_id, whole_number
from bot.services import measurements
from bot.services.reminders import valid
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


BUTTON_DATA = st.one_of(
    TEXT, st.text(alphabet="qrsctvwiagyesno:0123456789bldhfkpm-", max_size=40), st.just("r:1:b:time")
)


@SETTINGS
@given(BUTTON_DATA, st.sampled_from(FAMILIES))
def test_callback_data_is_parsed_or_refused(data: str, family: type[ButtonData]) -> None:
    """Any data gives a tap that packs back to the same data, or None (an old button)."""
    choice = parse_choice(data)
    assert isinstance(choice.seq, int) and isinstance(choice.value, str)
    for candidate in (data, f"{family.prefix}:{data}"):
        tap = family.unpack(candidate)
        if tap is not None:
            assert family.matches(candidate)
            assert family.unpack(tap.pack()) == tap
            assert all(0 <= v <= MAX_ROW_ID for v in tap.model_dump().values() if isinstance(v, int))


@pytest.mark.parametrize(
    ("tap", "data"),
    [
        (QuestionTap(seq=4, value="dim:2"), "q:4:dim:2"),
        (ReminderTap(reminder=7, op=ReminderOp.BARRIER, arg="time"), "r:7:b:time"),
        (ReminderTap(reminder=7, op=ReminderOp.DONE), "r:7:done"),
        (CheckTap(check_id=3, yes=True), "sc:3:y"),
        (CheckTap(check_id=0, kind="suicide", yes=False), "sc:0:suicide:n"),
        (TranscriptTap(note=9, answer="no"), "vt:9:no"),
        (EraseTap(answer="no"), "wis:no"),
        (EraseTap(answer="yes", asked=1700000000, signature="ab12"), "wis:yes:1700000000:ab12"),
        (AgendaTap(consult=12), "ag:12"),
        (ReplayTap(), "v:again"),
    ],
)
def test_every_button_family_packs_to_its_wire_form_and_back(tap: ButtonData, data: str) -> None:
    assert tap.pack() == data
    assert type(tap).unpack(data) == tap
    assert family_of(data) is type(tap)


@pytest.mark.parametrize(
    "data",
    [
        "r:1:b:nonsense",  # an answer the bot never offers is refused by the service, see valid()
        "r:١:done",
        f"r:{'9' * 30}:done",
        "r:-1:done",
        "sc:1:maybe",
        "sc:5:suicide:y",  # a stored check carries no kind
        "vt:1:yes:extra",
        "wis:yes:٣:x",
        "ag:",
        "q:5",
        "v:later",
    ],
)
def test_malformed_button_data_is_no_tap(data: str) -> None:
    family = family_of(data)
    assert family is not None
    tap = family.unpack(data)
    assert tap is None or (isinstance(tap, ReminderTap) and not valid(tap))


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
