"""Service rules against the in-memory store (bot/testing/memory.py): no SQLite, no aiogram, a
frozen clock, services built as ``bot.app.build_app`` builds them. Each test is milliseconds.

The same rules are tested end to end through the real Dispatcher in tests/test_reminders.py,
tests/test_notices.py and tests/test_safety.py; these tests expect the same messages (taken from
the catalog), so the two layers agree. Write a rule's edge cases here; keep the dispatcher tests
for what only the whole path shows (buttons cleared, toasts answered, outbox delivery).
"""

from __future__ import annotations

import inspect
import json
import sqlite3
import typing
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any

import aiosqlite
import pytest

from bot.callbacks import CheckTap, ReminderOp, ReminderTap
from bot.channels import Reply
from bot.clock import FrozenClock, from_iso
from bot.config import Settings
from bot.content import DEFAULT_CONTENT_DIR
from bot.flows.model import OutMessage
from bot.nlp.safety import SafetyLexicon, SafetyResult
from bot.services.agenda import REVIEW_ANSWERS, AgendaService
from bot.services.locks import KeyedLocks
from bot.services.measurements import SignalRules
from bot.services.notices import PracticeNotices
from bot.services.plans import MAX_PLAN_TEXT, PlanError, PlanService
from bot.services.reminders import BARRIERS, LATER, NO_BARRIER, RETIME, ReminderService, valid
from bot.services.safety import SafetyService
from bot.storage import ports
from bot.storage.models import OutboxItem, OutboxKind, Patient, Reminder, ReminderStatus
from bot.storage.ports import UnitOfWork
from bot.testing.memory import MemoryStore
from scheduler.schedules import Schedule
from tests.catalog import CATALOG, label, says, shows

SETTINGS = Settings(_env_file=None)  # the defaults build_app reads: zone, quiet hours, limits
AMS = SETTINGS.zone
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 10:00 in Amsterdam, as tests/conftest.py
DAY = date(2026, 11, 23)
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
PATIENT, OTHER_PATIENT, POH, POH2, UNLINKED = 501, 502, 701, 702, 0
FAKED = ("practices", "clinicians", "patients", "voice_notes", "consults", "updates", "safety", "outbox")
FAKED += ("plans", "reminders")


@pytest.fixture(autouse=True)
def no_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test here that reaches SQLite (a service building its own store) fails at once."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a memory-store test opened SQLite")

    monkeypatch.setattr(aiosqlite, "connect", refuse)
    monkeypatch.setattr(sqlite3, "connect", refuse)


# -- the world: one practice, two linked POHs (and one never linked), a patient, a consult --------
@cache
def safety_lexicon() -> SafetyLexicon:
    return SafetyLexicon(DEFAULT_CONTENT_DIR / "lexicon" / "safety.yaml")


class FakeAnalyzer:
    """What SafetyService asks of the analyzer: the real lexicon's routes and yes/no words, and
    ``assess`` answering what the test put in ``results`` (the matcher has its own tests)."""

    def __init__(self) -> None:
        self.results: dict[str, SafetyResult] = {}

    @property
    def lexicon(self) -> Any:
        return type("Lexicon", (), {"safety": safety_lexicon()})()  # read on first use only

    def route(self, flag: str) -> str:
        return self.lexicon.safety.routes[flag]

    def assess(self, text: str) -> SafetyResult:
        return self.results.get(text, SafetyResult())


@dataclass
class World:
    store: Any  # a MemoryStore; a SqliteStore in tests/test_memory_store.py (the fake's check)
    clock: FrozenClock
    analyzer: FakeAnalyzer
    notices: PracticeNotices
    safety: SafetyService
    plans: PlanService
    reminders: ReminderService
    practice: int
    poh: int  # the consult's own POH
    poh2: int
    unlinked: int  # a POH of the practice who never linked Telegram
    patient_id: int
    consult: int

    async def patient(self, patient_id: int | None = None) -> Patient:
        found = await self.store.patients.get(patient_id or self.patient_id)
        assert found is not None
        return found

    def row(self, reminder_id: int) -> dict[str, Any]:
        return self.store.tables.reminders[reminder_id]

    def outbox(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every outbox row with every column (``rows()`` leaves the recipient patient out)."""
        return [r for _, r in sorted(self.store.tables.outbox.items()) if kind is None or r["kind"] == kind]

    async def tap(
        self, reminder_id: int, op: ReminderOp, arg: str = "", *, update: int | None = None
    ) -> Reply:
        tap = ReminderTap(reminder=reminder_id, op=op, arg=arg)
        return await self.reminders.tap(await self.patient(), tap, update)

    async def due(self, moment: datetime) -> list[int]:
        """Move the clock and let the scheduler make what is due; returns the new reminders' ids."""
        self.clock.set(moment)
        before = {r.id for r in await self.all_reminders()}
        await self.reminders.materialise()
        return sorted({r.id for r in await self.all_reminders()} - before)

    async def all_reminders(self) -> list[Reminder]:
        return await self.store.reminders.of_patient(self.patient_id, EVER[0], EVER[1])

    async def plan(
        self, what: str = "Tien minuten wandelen", at: str = "14:00", measurement: str | None = None
    ) -> tuple[int, int]:
        """As tests/test_reminders.py plan_with: a goal and a daily action from today."""
        goal = await self.plans.add_goal(self.patient_id, "Fitter worden", "cli")
        schedule = Schedule("daily", time.fromisoformat(at), self.clock.now().astimezone(AMS).date())
        return goal, await self.plans.add_action(goal, what, schedule, "cli", measurement)


async def build(clock: FrozenClock | None = None, store: UnitOfWork | None = None) -> World:
    """The services over ``store`` (a fresh MemoryStore), wired as ``bot.app.build_app`` does."""
    clock = clock or FrozenClock(START)
    store = store or MemoryStore()
    now = clock.now()
    practice = await store.practices.add("Huisartsenpraktijk De Linde", now)
    poh = await store.clinicians.add(practice, "Anna (POH)", now)
    await store.clinicians.link(poh, POH, POH)
    poh2 = await store.clinicians.add(practice, "Bram (POH)", now)
    await store.clinicians.link(poh2, POH2, POH2)
    unlinked = await store.clinicians.add(practice, "Carla (nog niet gekoppeld)", now)
    patient_id = await store.patients.add(practice, "J. de Vries", now)
    await store.patients.link(patient_id, PATIENT, PATIENT)
    consult = await store.consults.add(
        practice, patient_id, poh, datetime(2026, 12, 1, 14, 30, tzinfo=AMS), now
    )
    analyzer = FakeAnalyzer()
    notices = PracticeNotices(store)
    agenda = AgendaService(
        store,
        CATALOG,
        AMS,
        SETTINGS.low_score_threshold,
        lambda: analyzer,  # type: ignore[arg-type, return-value]
        web_base_url=SETTINGS.web_base_url,
    )
    safety = SafetyService(
        store,
        lambda: analyzer,  # type: ignore[arg-type, return-value]
        CATALOG,
        clock,
        agenda.when,
        notices=notices,
        check_minutes=SETTINGS.safety_check_minutes,
    )
    plans = PlanService(store, clock, AMS, SETTINGS.quiet)
    reminders = ReminderService(
        store,
        plans,
        CATALOG,
        clock,
        AMS,
        quiet=SETTINGS.quiet,
        max_late=timedelta(hours=SETTINGS.reminder_max_late_hours),
        rules=SignalRules.load(SETTINGS.signal_rules_file),
        locks=KeyedLocks(),
        notices=notices,
        max_text_chars=SETTINGS.max_answer_chars,
    )
    return World(
        store,
        clock,
        analyzer,
        notices,
        safety,
        plans,
        reminders,
        practice,
        poh,
        poh2,
        unlinked,
        patient_id,
        consult,
    )


@pytest.fixture
async def w() -> World:
    return await build()


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=AMS)


def text(reply: Reply | list[OutMessage]) -> str:
    messages = reply.messages if isinstance(reply, Reply) else reply
    return "\n".join(m.text for m in messages)


def buttons(message: OutMessage) -> list[tuple[str, str]]:
    return [(b.label, b.value) for row in message.buttons for b in row]


def taps(message: OutMessage) -> list[ReminderTap]:
    found = [ReminderTap.unpack(data) for _, data in buttons(message)]
    assert all(found), buttons(message)
    return [t for t in found if t is not None]


def snoozed(moment: datetime) -> str:
    return says("reminder.snoozed", when=CATALOG.format_when(moment, "short"))


def item(row: dict[str, Any]) -> OutboxItem:
    """An outbox row as the sender hands it to a renderer."""
    return OutboxItem(
        row["id"],
        row["kind"],
        row["chat_id"],
        json.loads(row["payload_json"]),
        from_iso(row["due_at"]),
        row["attempts"],
        row["patient_id"],
        row["consult_id"],
    )


# -- the fake itself -------------------------------------------------------------------------------
def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def _protocols() -> dict[str, type]:
    found = {}
    for name, member in vars(ports.UnitOfWork).items():
        if isinstance(member, property) and member.fget is not None:
            hint = typing.get_type_hints(member.fget, vars(ports)).get("return")
            if isinstance(hint, type):
                found[name] = hint
    return found


@pytest.mark.parametrize("attribute", FAKED)
def test_each_fake_repository_implements_its_protocol_exactly(attribute: str) -> None:
    protocol = _protocols()[attribute]
    fake = type(getattr(MemoryStore(), attribute))
    wanted, offered = _public(protocol), _public(fake)
    assert set(offered) == set(wanted), (fake.__name__, set(offered) ^ set(wanted))
    for name, signature in wanted.items():
        assert str(offered[name]) == str(signature), f"{fake.__name__}.{name}"
        assert inspect.iscoroutinefunction(getattr(fake, name)), name


def test_a_repository_not_faked_fails_loudly_instead_of_passing() -> None:
    store = MemoryStore()
    missing = set(_protocols()) - set(FAKED)
    assert missing == {
        "invites",
        "consents",
        "answers",
        "conversations",
        "inbox",
        "web",
        "health",
        "retention",
    }
    for name in missing:
        with pytest.raises(NotImplementedError):
            getattr(store, name)


async def test_a_failed_transaction_leaves_no_trace_in_any_repository() -> None:
    store = MemoryStore()
    now = START
    practice = await store.practices.add("Praktijk", now)
    with pytest.raises(RuntimeError):
        async with store.transaction():
            patient = await store.patients.add(practice, None, now)
            async with store.transaction():  # an inner block joins the outer one
                await store.consults.add(practice, patient, None, now, now)
                await store.outbox.enqueue(OutboxKind.AGENDA, 1, {"consult_id": 1}, now, now)
            raise RuntimeError("cut off halfway")
    assert await store.consults.of_practice(practice) == []
    assert await store.patients.get(1) is None and await store.outbox.rows() == []
    assert (store.commits, store.rollbacks) == (0, 1)
    async with store.transaction():
        assert await store.patients.add(practice, None, now) == 1  # the id is free again, as in SQLite
    assert store.commits == 1


# -- reminders: from the schedule to the patient -----------------------------------------------------
async def test_a_reminder_is_made_at_its_moment_and_queued_for_the_patient(w: World) -> None:
    _, action = await w.plan()
    assert await w.due(local(DAY, 13, 59)) == []
    assert w.outbox(OutboxKind.REMINDER) == []
    [rid] = await w.due(local(DAY, 14, 0))
    assert w.row(rid)["status"] == ReminderStatus.PENDING
    [row] = w.outbox(OutboxKind.REMINDER)
    assert (row["chat_id"], row["patient_id"], from_iso(row["due_at"])) == (
        PATIENT,
        w.patient_id,
        local(DAY, 14),
    )
    # The action's next moment is tomorrow 14:00; the same tick again makes nothing twice.
    assert from_iso(w.store.tables.actions[action]["next_due_at"]) == local(DAY + timedelta(days=1), 14)
    assert await w.due(local(DAY, 14, 0)) == []


async def test_the_reminder_offers_done_not_done_and_later(w: World) -> None:
    await w.plan()
    await w.due(local(DAY, 14))
    [message] = await w.reminders.render(item(w.outbox(OutboxKind.REMINDER)[0])) or []
    assert says("reminder.action", what="Tien minuten wandelen") in message.text
    labels = [b for b, _ in buttons(message)]
    assert labels == [label(f"reminder.buttons.{k}") for k in ("done", "not_done", "later")]
    assert [t.op for t in taps(message)] == [ReminderOp.DONE, ReminderOp.FAIL, ReminderOp.LATER]


async def test_done_is_recorded_once_and_a_second_answer_only_toasts(w: World) -> None:
    await w.plan()
    [rid] = await w.due(local(DAY, 14))
    reply = await w.tap(rid, ReminderOp.DONE, update=11)
    assert text(reply) == says("reminder.well_done") and reply.toast is None
    assert (reply.chat_id, reply.patient_id) == (PATIENT, w.patient_id)
    assert w.row(rid)["status"] == ReminderStatus.DONE and await w.store.updates.is_processed(11)
    for op, arg in (
        (ReminderOp.DONE, ""),
        (ReminderOp.FAIL, ""),
        (ReminderOp.LATER, ""),
        (ReminderOp.REVIEW, "good"),
    ):
        again = await w.tap(rid, op, arg, update=12)
        assert again.messages == [] and again.toast == says("toast.already"), op
    assert w.row(rid)["status"] == ReminderStatus.DONE
    assert await w.store.updates.is_processed(12)  # the double tap is applied too (nothing to redo)


async def test_not_done_asks_what_got_in_the_way_and_then_waits_for_a_note(w: World) -> None:
    await w.plan()
    [rid] = await w.due(local(DAY, 14))
    reply = await w.tap(rid, ReminderOp.FAIL)
    assert w.row(rid)["status"] == ReminderStatus.NOT_DONE
    [question] = reply.messages
    assert question.text == says("reminder.what_got_in_the_way")
    expected = [label(f"reminder.barriers.{b}") for b in BARRIERS] + [label("reminder.buttons.no_answer")]
    assert [b for b, _ in buttons(question)] == expected
    assert [(t.op, t.arg) for t in taps(question)] == [
        (ReminderOp.BARRIER, b) for b in (*BARRIERS, NO_BARRIER)
    ]

    reply = await w.tap(rid, ReminderOp.BARRIER, "complaints")
    assert text(reply) == says("reminder.tell_more")
    assert [t.op for t in taps(reply.messages[0])] == [ReminderOp.NO_NOTE]
    assert (w.row(rid)["barrier"], w.row(rid)["awaiting"]) == ("complaints", "note")
    patient = await w.patient()
    reply = await w.reminders.text(patient, "Mijn knie deed zeer na het traplopen", 21)
    assert reply is not None and text(reply) == says("reminder.thanks_next_time")
    row = w.row(rid)
    assert (row["status"], row["barrier"], row["awaiting"]) == ("not_done", "complaints", None)
    assert row["note"] == "Mijn knie deed zeer na het traplopen" and await w.store.updates.is_processed(21)
    assert await w.reminders.text(patient, "hallo", 22) is None  # nothing waits: the conversation's


async def test_no_answer_to_the_barrier_question_waits_for_nothing(w: World) -> None:
    await w.plan()
    [rid] = await w.due(local(DAY, 14))
    await w.tap(rid, ReminderOp.FAIL)
    reply = await w.tap(rid, ReminderOp.BARRIER, NO_BARRIER)
    assert text(reply) == says("reminder.thanks_next_time")
    assert (w.row(rid)["barrier"], w.row(rid)["awaiting"]) == (None, None)


async def test_a_note_that_is_too_long_is_refused_and_still_awaited(w: World) -> None:
    await w.plan()
    [rid] = await w.due(local(DAY, 14))
    await w.tap(rid, ReminderOp.FAIL)
    await w.tap(rid, ReminderOp.BARRIER, "time")
    reply = await w.reminders.text(await w.patient(), "x" * (SETTINGS.max_answer_chars + 1), None)
    assert reply is not None and text(reply) == says("bad.text_too_long", max=SETTINGS.max_answer_chars)
    assert (w.row(rid)["note"], w.row(rid)["awaiting"]) == (None, "note")


async def test_forged_old_and_foreign_taps_are_old_buttons_and_change_nothing(w: World) -> None:
    await w.plan()
    [rid] = await w.due(local(DAY, 14))
    other = await w.store.patients.add(w.practice, None, w.clock.now())
    await w.store.patients.link(other, OTHER_PATIENT, OTHER_PATIENT)
    before = {k: dict(v) for k, v in w.store.tables.reminders.items()}
    gone = says("reminder.gone")
    patient = await w.patient()
    cases: list[tuple[Patient, ReminderTap | None]] = [
        (patient, None),  # data the channel could not read ("r:abc", "r:1:explode")
        (patient, ReminderTap(reminder=999, op=ReminderOp.DONE)),  # no such reminder
        (await w.patient(other), ReminderTap(reminder=rid, op=ReminderOp.DONE)),  # not theirs
        (patient, ReminderTap(reminder=rid, op=ReminderOp.BARRIER, arg="explode")),
        (patient, ReminderTap(reminder=rid, op=ReminderOp.SNOOZE, arg="next_year")),
        (patient, ReminderTap(reminder=rid, op=ReminderOp.TIME, arg="07:00")),  # not a time offered
        (patient, ReminderTap(reminder=rid, op=ReminderOp.DONE, arg="extra")),  # done takes no answer
    ]
    for who, tap in cases:
        reply = await w.reminders.tap(who, tap, 31)
        assert text(reply) == gone and reply.toast == says("toast.old"), tap
        assert reply.chat_id == who.telegram_chat_id
    assert {k: dict(v) for k, v in w.store.tables.reminders.items()} == before
    assert w.store.tables.processed == {}  # the update guard marks these, not the service
    assert ReminderTap.unpack("r:1:explode") is None and ReminderTap.unpack("r:abc") is None
    assert valid(ReminderTap(reminder=rid, op=ReminderOp.SNOOZE, arg="1h"))
    assert not valid(ReminderTap(reminder=rid, op=ReminderOp.SNOOZE))


async def test_later_offers_this_evening_only_before_half_past_seven(w: World) -> None:
    await w.plan()
    [rid] = await w.due(local(DAY, 14))
    offered = {}
    for hh, mm in ((14, 0), (19, 29), (19, 30), (21, 0)):
        w.clock.set(local(DAY, hh, mm))
        [question] = (await w.tap(rid, ReminderOp.LATER)).messages
        assert question.text == says("reminder.when_later")
        offered[(hh, mm)] = [t.arg for t in taps(question)]
        assert [b for b, _ in buttons(question)] == [label(f"reminder.later.{o}") for o in offered[(hh, mm)]]
    assert offered[(14, 0)] == offered[(19, 29)] == list(LATER)
    assert offered[(19, 30)] == offered[(21, 0)] == ["1h", "tomorrow"]
    assert w.row(rid)["status"] == ReminderStatus.PENDING  # asking "when" answers nothing yet


@pytest.mark.parametrize(
    ("at", "choice", "again"),
    [
        ((14, 0), "1h", local(DAY, 15)),
        ((14, 0), "evening", local(DAY, 19, 30)),
        ((14, 0), "tomorrow", local(DAY + timedelta(days=1), 14)),  # the action's own time
        ((21, 0), "1h", local(DAY + timedelta(days=1), 8)),  # 22:00 is quiet: the morning
    ],
)
async def test_snooze_queues_the_reminder_again_outside_quiet_hours(
    w: World, at: tuple[int, int], choice: str, again: datetime
) -> None:
    await w.plan(at=f"{at[0]:02d}:{at[1]:02d}")
    [rid] = await w.due(local(DAY, *at))
    reply = await w.tap(rid, ReminderOp.SNOOZE, choice)
    assert text(reply) == snoozed(again)
    row = w.row(rid)
    assert (row["status"], row["later_count"]) == ("later", 1)
    queued = [r for r in w.outbox(OutboxKind.REMINDER) if r["payload_json"] == f'{{"reminder_id": {rid}}}']
    assert [from_iso(r["due_at"]) for r in queued] == [local(DAY, *at), again]
    # Tapped again when it comes back: "done" still counts.
    w.clock.set(again)
    assert text(await w.tap(rid, ReminderOp.DONE)) == says("reminder.well_done")
    assert (w.row(rid)["status"], w.row(rid)["later_count"]) == ("done", 1)


async def test_a_snooze_tap_after_done_does_not_reopen_the_reminder(w: World) -> None:
    """ "Later", then "done" (a double tap on the reminder before its buttons were cleared), then
    "in an hour" on the question "later" put up: the reminder must stay done. SNOOZE is not in
    ``ANSWERS``, so it sets the reminder back to 'later' and queues it again (sent again at 15:00)."""
    await w.plan()
    [rid] = await w.due(local(DAY, 14))
    await w.tap(rid, ReminderOp.LATER)
    await w.tap(rid, ReminderOp.DONE)
    reply = await w.tap(rid, ReminderOp.SNOOZE, "1h")
    assert w.row(rid)["status"] == ReminderStatus.DONE
    assert len(w.outbox(OutboxKind.REMINDER)) == 1
    assert reply.messages == [] and reply.toast == says("toast.already")


async def test_a_streak_of_not_done_signals_every_poh_once(w: World) -> None:
    await w.plan()
    for i in range(4):
        [rid] = await w.due(local(DAY + timedelta(days=i), 14))
        reply = await w.tap(rid, ReminderOp.FAIL)
        assert says("measure.told_practice") not in text(reply)  # a streak is the POH's, not news
        signals = w.outbox(OutboxKind.SIGNAL)
        assert len(signals) == (0 if i < 2 else 2), i  # on the third, and not again on the fourth
    # Not about the consult's own POH: every POH who receives agendas; none to the unlinked one.
    assert [r["chat_id"] for r in signals] == [POH, POH2]
    assert all(r["patient_id"] is None and r["status"] == "pending" for r in signals)
    payload = {"patient_id": w.patient_id, "rule": "not_done", "kind": "action", "detail": "3"}
    assert all(r["payload_json"] == json.dumps(payload) for r in signals)
    [message] = await w.reminders.render_signal(item(signals[0])) or []
    assert message.text == says("clinician.signal.not_done", consult=w.consult, detail=3)
    assert "wandelen" not in message.text  # never the patient's words to the POH


async def test_a_done_in_between_breaks_the_streak(w: World) -> None:
    await w.plan()
    for i, op in enumerate((ReminderOp.FAIL, ReminderOp.DONE, ReminderOp.FAIL, ReminderOp.FAIL)):
        [rid] = await w.due(local(DAY + timedelta(days=i), 14))
        await w.tap(rid, op)
    assert w.outbox(OutboxKind.SIGNAL) == []


async def test_after_downtime_late_reminders_are_missed_and_count_in_the_streak(w: World) -> None:
    await w.plan()
    # The bot was down from before 14:00 on Monday until Wednesday 15:30 (as tests/test_reminders.py).
    ids = await w.due(local(DAY + timedelta(days=2), 15, 30))
    assert [w.row(r)["status"] for r in ids] == ["missed", "missed", "pending"]
    assert [r["payload_json"] for r in w.outbox(OutboxKind.REMINDER)] == [f'{{"reminder_id": {ids[2]}}}']
    assert w.outbox(OutboxKind.SIGNAL) == []
    await w.tap(ids[2], ReminderOp.FAIL)
    assert [r["chat_id"] for r in w.outbox(OutboxKind.SIGNAL)] == [POH, POH2]


async def test_a_measurement_is_asked_checked_and_signalled(w: World) -> None:
    await w.plan("Bloeddruk meten", "09:00", measurement="blood_pressure")
    [rid] = await w.due(local(DAY + timedelta(days=1), 9))
    reply = await w.tap(rid, ReminderOp.DONE)
    assert text(reply) == says("measure.ask.blood_pressure")
    assert [t.op for t in taps(reply.messages[0])] == [ReminderOp.NO_VALUE]
    assert (w.row(rid)["status"], w.row(rid)["awaiting"]) == ("pending", "value")
    patient = await w.patient()
    for bad, problem in (("weet ik niet", "measure.bad_format"), ("80/130", "measure.bad_order")):
        again = await w.reminders.text(patient, bad, None)
        assert again is not None and text(again) == f"{says(problem)}\n{says('measure.ask.blood_pressure')}"
        assert w.row(rid)["awaiting"] == "value"
    reply = await w.reminders.text(patient, "130/80", None)
    assert reply is not None and text(reply) == says("measure.noted", value="130/80")
    assert (w.row(rid)["status"], w.row(rid)["value_json"], w.row(rid)["awaiting"]) == (
        "done",
        "[130, 80]",
        None,
    )
    assert w.outbox(OutboxKind.SIGNAL) == []
    # Far above the practice's limit: the patient hears the practice is told, every POH is told.
    [rid] = await w.due(local(DAY + timedelta(days=2), 9))
    await w.tap(rid, ReminderOp.DONE)
    reply = await w.reminders.text(patient, "195 op 100", None)
    assert reply is not None and text(reply) == "\n".join(
        (says("measure.noted", value="195/100"), says("measure.told_practice"))
    )
    signals = w.outbox(OutboxKind.SIGNAL)
    assert [r["chat_id"] for r in signals] == [POH, POH2] and all(r["patient_id"] is None for r in signals)
    [message] = await w.reminders.render_signal(item(signals[0])) or []
    assert shows(message.text, "clinician.signal.above") and "195/100" in message.text


async def test_no_value_closes_the_measurement_as_done(w: World) -> None:
    await w.plan("Gewicht meten", "09:00", measurement="weight")
    [rid] = await w.due(local(DAY + timedelta(days=1), 9))
    await w.tap(rid, ReminderOp.DONE)
    reply = await w.tap(rid, ReminderOp.NO_VALUE)
    assert text(reply) == says("reminder.thanks_next_time")
    assert (w.row(rid)["status"], w.row(rid)["value_json"], w.row(rid)["awaiting"]) == ("done", None, None)


async def test_a_discreet_reminder_hides_the_action_until_show(w: World) -> None:
    await w.plan("Insuline spuiten")
    await w.store.patients.set_settings(w.patient_id, discreet=True, quiet_start=None, quiet_end=None)
    [rid] = await w.due(local(DAY, 14))
    [message] = await w.reminders.render(item(w.outbox(OutboxKind.REMINDER)[0])) or []
    assert message.text == says("reminder.discreet_action") and "Insuline" not in message.text
    assert [t.op for t in taps(message)] == [ReminderOp.SHOW]
    [shown] = (await w.tap(rid, ReminderOp.SHOW)).messages
    assert shown.edit and "Insuline spuiten" in shown.text  # the same message, edited
    assert [t.op for t in taps(shown)] == [ReminderOp.DONE, ReminderOp.FAIL, ReminderOp.LATER]
    assert w.row(rid)["status"] == ReminderStatus.PENDING


async def test_nothing_is_sent_for_an_answered_unreachable_or_too_late_reminder(w: World) -> None:
    await w.plan()
    [first] = await w.due(local(DAY, 14))
    [row] = w.outbox(OutboxKind.REMINDER)
    await w.tap(first, ReminderOp.DONE)
    assert await w.reminders.render(item(row)) is None  # answered meanwhile
    [second] = await w.due(local(DAY + timedelta(days=1), 14))
    late = item(w.outbox(OutboxKind.REMINDER)[-1])
    w.clock.set(local(DAY + timedelta(days=1), 16, 1))  # more than 2 hours after its moment
    assert await w.reminders.render(late) is None
    assert w.row(second)["status"] == ReminderStatus.MISSED
    [third] = await w.due(local(DAY + timedelta(days=2), 14))
    await w.store.patients.set_blocked(w.patient_id, w.clock.now())
    assert await w.reminders.render(item(w.outbox(OutboxKind.REMINDER)[-1])) is None
    assert w.row(third)["status"] == ReminderStatus.PENDING  # not sent, not counted as missed


async def test_the_weekly_look_back_can_move_the_action_to_another_time(w: World) -> None:
    _, action = await w.plan()
    ids = await w.due(local(DAY + timedelta(days=7), 18, 30))  # a week later, 18:30: the look back
    [review] = [r for r in ids if w.row(r)["kind"] == "review"]
    queued = [r for r in w.outbox(OutboxKind.REMINDER) if r["payload_json"] == f'{{"reminder_id": {review}}}']
    [message] = await w.reminders.render(item(queued[0])) or []
    assert message.text == says("reminder.review", goal="Fitter worden")
    assert [(t.op, t.arg) for t in taps(message)] == [(ReminderOp.REVIEW, a) for a in REVIEW_ANSWERS]
    reply = await w.tap(review, ReminderOp.REVIEW, "so_so")
    assert (w.row(review)["status"], w.row(review)["value_json"]) == ("done", '"so_so"')
    assert [t.op for t in taps(reply.messages[0])] == [ReminderOp.KEEP, ReminderOp.RETIME]
    [pick] = (await w.tap(review, ReminderOp.RETIME)).messages
    assert [t.arg for t in taps(pick)] == list(RETIME)
    reply = await w.tap(review, ReminderOp.TIME, "18:00")
    assert text(reply) == says("reminder.retimed", time="18:00")
    [view] = await w.plans.goals(w.patient_id, with_history=True)
    assert [a.ended for a in view.actions] == [True, False] and view.actions[1].replaces == action
    assert view.actions[1].schedule.at == time(18, 0)
    assert view.actions[1].next_due_at == local(DAY + timedelta(days=8), 18)
    assert (await w.tap(review, ReminderOp.REVIEW, "good")).toast == says("toast.already")


async def test_a_patient_who_blocked_the_bot_is_marked_and_every_poh_told_once(w: World) -> None:
    await w.plan()
    await w.due(local(DAY, 14))
    reminder = item(w.outbox(OutboxKind.REMINDER)[0])
    await w.reminders.patient_blocked(reminder)
    assert (await w.patient()).blocked
    assert w.outbox(OutboxKind.REMINDER)[0]["status"] == "cancelled"  # nothing more goes to them
    blocked = w.outbox(OutboxKind.BLOCKED)
    assert [(r["chat_id"], r["patient_id"]) for r in blocked] == [(POH, None), (POH2, None)]
    await w.reminders.patient_blocked(reminder)  # the next 403 tells nobody again
    assert len(w.outbox(OutboxKind.BLOCKED)) == 2
    [message] = await w.reminders.render_blocked(item(blocked[0])) or []
    assert message.text == says("clinician.blocked", consult=w.consult)
    await w.store.patients.set_blocked(w.patient_id, None)  # they wrote again
    assert await w.reminders.render_blocked(item(blocked[0])) is None


async def test_a_refused_message_is_told_once_per_patient_and_kind(w: World) -> None:
    await w.plan()
    await w.due(local(DAY, 14))
    reminder = item(w.outbox(OutboxKind.REMINDER)[0])
    await w.reminders.delivery_rejected(reminder)
    await w.reminders.delivery_rejected(reminder)
    rejected = w.outbox(OutboxKind.REJECTED)
    assert [r["chat_id"] for r in rejected] == [POH, POH2]
    await w.reminders.delivery_rejected(item(rejected[0]))  # a refused notice is not noticed again
    assert len(w.outbox(OutboxKind.REJECTED)) == 2
    for row in rejected:
        w.store.tables.outbox[row["id"]]["status"] = "sent"
    await w.reminders.delivery_rejected(reminder)  # told, and refused again: told again
    assert len(w.outbox(OutboxKind.REJECTED)) == 4


# -- notices for the practice ------------------------------------------------------------------------
async def test_a_notice_goes_to_the_consults_own_poh_or_else_to_every_poh(w: World) -> None:
    now = w.clock.now()
    own = await w.notices.tell(
        OutboxKind.ALERT, w.practice, {"consult_id": w.consult}, now, clinician_id=w.poh
    )
    assert own == 1 and [r["chat_id"] for r in w.outbox()] == [POH]
    every = await w.notices.tell(OutboxKind.AGENDA, w.practice, {}, now, clinician_id=w.unlinked)
    assert every == 2 and [r["chat_id"] for r in w.outbox(OutboxKind.AGENDA)] == [POH, POH2]
    await w.notices.tell(OutboxKind.SIGNAL, w.practice, {}, now)
    assert [r["chat_id"] for r in w.outbox(OutboxKind.SIGNAL)] == [POH, POH2]
    assert all(r["patient_id"] is None for r in w.outbox())  # about a patient, never to one


async def test_a_notice_reaches_only_active_linked_pohs_of_its_own_practice(w: World) -> None:
    now = w.clock.now()
    other = await w.store.practices.add("Andere praktijk", now)
    stranger = await w.store.clinicians.add(other, "Dirk", now)
    await w.store.clinicians.link(stranger, 799, 799)
    clinicians = w.store.tables.clinicians
    clinicians[w.poh2] = replace(clinicians[w.poh2], active=False)
    assert await w.notices.tell(OutboxKind.BLOCKED, w.practice, {}, now, clinician_id=w.poh2) == 1
    assert [r["chat_id"] for r in w.outbox()] == [POH]
    clinicians[w.poh] = replace(clinicians[w.poh], active=False)
    assert await w.notices.tell(OutboxKind.BLOCKED, w.practice, {}, now) == 0  # nobody left: logged
    assert len(w.outbox()) == 1


async def test_a_notice_keeps_its_due_moment_and_consult(w: World) -> None:
    now = w.clock.now()
    later = now + timedelta(minutes=5)
    await w.notices.tell(
        OutboxKind.ALERT, w.practice, {"x": 1}, now, clinician_id=w.poh, due=later, consult_id=w.consult
    )
    [row] = w.outbox()
    assert (from_iso(row["due_at"]), row["consult_id"], row["payload_json"]) == (later, w.consult, '{"x": 1}')
    assert await w.store.outbox.due(now) == [] and len(await w.store.outbox.due(later)) == 1


@pytest.mark.parametrize("kind", [OutboxKind.REMINDER, OutboxKind.PLAN_START])
async def test_a_notice_refuses_a_kind_meant_for_the_patient(w: World, kind: OutboxKind) -> None:
    with pytest.raises(ValueError):
        await w.notices.tell(kind, w.practice, {}, w.clock.now())
    assert w.outbox() == []


# -- the safety net's check tier ---------------------------------------------------------------------
async def ask(w: World, kinds: tuple[str, ...] = ("suicide",)) -> tuple[int, OutMessage]:
    question = await w.safety.ask(await w.patient(), w.consult, list(kinds))
    [check_id] = list(w.store.tables.safety_checks)[-1:]
    return check_id, question


async def test_a_check_asks_yes_or_no_and_queues_a_notice_for_later(w: World) -> None:
    check_id, question = await ask(w)
    assert question.text == says("safety.checks.suicide")
    assert buttons(question) == [
        (label("buttons.check_yes"), CheckTap(check_id=check_id, yes=True).pack()),
        (label("buttons.check_no"), CheckTap(check_id=check_id, yes=False).pack()),
    ]
    [row] = w.outbox(OutboxKind.ALERT)
    assert (row["chat_id"], row["patient_id"], row["consult_id"]) == (POH, None, w.consult)  # own POH
    assert (
        row["payload_json"] == f'{{"consult_id": {w.consult}, "flags": ["suicide"], "check_id": {check_id}}}'
    )
    minutes = timedelta(minutes=SETTINGS.safety_check_minutes)
    assert from_iso(row["due_at"]) == w.clock.now() + minutes
    assert await w.store.outbox.due(w.clock.now() + minutes - timedelta(seconds=1)) == []
    # Unanswered when it is due: the POH hears what was asked, never the words.
    [message] = await w.safety.render_alert(item(row)) or []
    assert shows(message.text, "clinician.check_alert") and says("safety.flags.suicide") in message.text
    assert f"{round(minutes.total_seconds() / 60)} minuten" in message.text


async def test_no_to_a_check_thanks_once_and_the_later_notice_sends_nothing(w: World) -> None:
    check_id, _ = await ask(w)
    patient = await w.patient()
    answered = await w.safety.answer(patient, CheckTap(check_id=check_id, yes=False))
    assert answered is not None
    check, messages = answered
    assert check is not None and check.id == check_id and text(messages) == says("safety.check_thanks")
    assert (await w.store.safety.check(check_id)).answer == "no"  # type: ignore[union-attr]
    assert await w.safety.answer(patient, CheckTap(check_id=check_id, yes=True)) is None  # a late tap
    assert await w.safety.render_alert(item(w.outbox(OutboxKind.ALERT)[0])) is None
    assert len(w.outbox(OutboxKind.ALERT)) == 1 and await w.store.safety.flags(w.consult) == []


async def test_yes_to_a_check_routes_at_once_and_tells_the_poh_now(w: World) -> None:
    check_id, _ = await ask(w)
    answered = await w.safety.answer(await w.patient(), CheckTap(check_id=check_id, yes=True))
    assert answered is not None
    route = safety_lexicon().routes["suicide"]
    assert text(answered[1]) == f"{says(f'safety.routes.{route}')}\n{says('safety.told_practice')}"
    assert "113" in text(answered[1])
    later, now = w.outbox(OutboxKind.ALERT)
    assert from_iso(now["due_at"]) == w.clock.now() and now["chat_id"] == POH
    assert await w.store.safety.flags(w.consult) == ["suicide"]
    assert await w.safety.render_alert(item(later)) is None  # yes sent its own notice
    [message] = await w.safety.render_alert(item(now)) or []
    assert shows(message.text, "clinician.alert") and says(f"safety.route_names.{route}") in message.text


async def test_a_yes_whose_route_fails_to_be_stored_still_reaches_the_poh(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``answer`` stores "yes" on its own, then the route and the notice in a second transaction.
    When the second fails (a full disk, the process stopped in between) the check is answered,
    so the delayed notice renders nothing, and no immediate notice exists: nobody is told."""
    check_id, _ = await ask(w)

    async def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(w.store.safety, "add_event", disk_full)
    with pytest.raises(OSError):
        await w.safety.answer(await w.patient(), CheckTap(check_id=check_id, yes=True))
    monkeypatch.undo()
    told = [await w.safety.render_alert(item(r)) for r in w.outbox(OutboxKind.ALERT)]
    assert any(told)  # the delayed notice still goes (the check open), or the yes's own notice


async def test_a_check_answered_by_someone_else_is_an_old_button(w: World) -> None:
    check_id, _ = await ask(w)
    other = await w.store.patients.add(w.practice, None, w.clock.now())
    await w.store.patients.link(other, OTHER_PATIENT, OTHER_PATIENT)
    assert await w.safety.answer(await w.patient(other), CheckTap(check_id=check_id, yes=False)) is None
    assert await w.safety.answer(await w.patient(), CheckTap(check_id=999, yes=False)) is None
    assert (await w.store.safety.check(check_id)).answer is None  # type: ignore[union-attr]


async def test_a_typed_yes_or_no_answers_the_open_check_of_the_last_hour(w: World) -> None:
    patient = await w.patient()
    assert await w.safety.typed_answer(patient, "ja") is None  # no check asked
    check_id, _ = await ask(w)
    assert await w.safety.typed_answer(patient, "ja") == CheckTap(check_id=check_id, yes=True)
    assert await w.safety.typed_answer(patient, "Nee hoor") == CheckTap(check_id=check_id, yes=False)
    assert await w.safety.typed_answer(patient, "misschien morgen") is None
    w.clock.advance(timedelta(minutes=61))
    assert await w.safety.typed_answer(patient, "ja") is None  # too long ago to be its answer
    newer, _ = await ask(w)
    await w.safety.answer(patient, CheckTap(check_id=newer, yes=False))
    assert await w.safety.typed_answer(patient, "ja") is None  # answered already


async def test_a_strangers_answer_routes_without_telling_or_storing_anything(w: World) -> None:
    patient = await w.patient()
    question = w.safety.stranger_question(["suicide"])
    yes = CheckTap.unpack(dict(buttons(question))[label("buttons.check_yes")])
    assert yes == CheckTap(check_id=0, kind="suicide", yes=True)
    answered = await w.safety.answer(patient, yes)
    assert answered is not None and answered[0] is None
    assert text(answered[1]) == says(f"safety.routes.{safety_lexicon().routes['suicide']}")
    no = await w.safety.answer(patient, CheckTap(check_id=0, kind="suicide", yes=False))
    assert no is not None and text(no[1]) == says("safety.check_thanks")
    unknown = await w.safety.answer(patient, CheckTap(check_id=0, kind="nonsense", yes=True))
    assert unknown is not None and text(unknown[1]) == says("safety.check_thanks")
    assert w.outbox() == [] and w.store.tables.safety_events == [] and w.store.tables.safety_checks == {}


async def test_a_route_without_a_consult_is_recorded_but_tells_no_one(w: World) -> None:
    notes = await w.safety.route_notes(await w.patient(), None, ["overdose"])
    assert text(notes) == says(f"safety.routes.{safety_lexicon().routes['overdose']}")
    assert says("safety.told_practice") not in text(notes)
    assert [e["flag"] for e in w.store.tables.safety_events] == ["overdose"] and w.outbox() == []


async def test_assess_asks_the_analyzer_only_for_text(w: World) -> None:
    w.analyzer.results["ik ben het leven zat"] = SafetyResult(check=["suicide"])
    assert w.safety.assess("ik ben het leven zat").check == ["suicide"]
    assert not w.safety.assess("") and not w.safety.assess(None)


# -- the care plan -----------------------------------------------------------------------------------
async def test_a_goal_needs_words_and_a_patient(w: World) -> None:
    for bad in ("", "   ", "x" * (MAX_PLAN_TEXT + 1)):
        with pytest.raises(PlanError):
            await w.plans.add_goal(w.patient_id, bad, "cli")
    with pytest.raises(PlanError):
        await w.plans.add_goal(999, "Fitter worden", "cli")
    await w.store.patients.set_status(w.patient_id, "erased")
    with pytest.raises(PlanError):
        await w.plans.add_goal(w.patient_id, "Fitter worden", "cli")
    assert w.store.tables.plans == {} and w.store.tables.goals == {}


async def test_a_goal_is_looked_back_on_a_week_later_at_half_past_six(w: World) -> None:
    goal = await w.plans.add_goal(w.patient_id, "  Fitter worden ", "cli")
    row = w.store.tables.goals[goal]
    assert row["text"] == "Fitter worden"
    assert from_iso(row["next_review_at"]) == local(DAY + timedelta(days=7), 18, 30)
    assert await w.plans.add_goal(w.patient_id, "Beter slapen", "cli") == goal + 1
    assert len(w.store.tables.plans) == 1  # one plan per patient


async def test_an_action_needs_words_a_known_measurement_and_an_active_goal(w: World) -> None:
    goal = await w.plans.add_goal(w.patient_id, "Fitter worden", "cli")
    schedule = Schedule("daily", time(14, 0), DAY)
    for what, measurement, limits in (
        ("", None, None),
        ("Meten", "suiker", None),
        ("Wandelen", None, {"above": [150.0]}),  # limits need a measurement
    ):
        with pytest.raises(PlanError):
            await w.plans.add_action(goal, what, schedule, "cli", measurement, limits=limits)
    await w.plans.end_goal(goal)
    with pytest.raises(PlanError):
        await w.plans.add_action(goal, "Wandelen", schedule, "cli")
    with pytest.raises(PlanError):
        await w.plans.end_goal(goal)  # ended once
    assert w.store.tables.actions == {}


async def test_an_action_is_next_due_at_its_time_outside_quiet_hours(w: World) -> None:
    goal = await w.plans.add_goal(w.patient_id, "Fitter worden", "cli")
    cases = (("14:00", local(DAY, 14)), ("09:00", local(DAY + timedelta(days=1), 9)))
    cases += (("23:00", local(DAY + timedelta(days=1), 8)),)  # quiet from 21:30 to 08:00
    for at, due in cases:
        action = await w.plans.add_action(
            goal, "Wandelen", Schedule("daily", time.fromisoformat(at), DAY), "cli"
        )
        assert from_iso(w.store.tables.actions[action]["next_due_at"]) == due, at


async def test_changing_an_action_ends_it_and_its_successor_keeps_the_limits(w: World) -> None:
    goal = await w.plans.add_goal(w.patient_id, "Bloeddruk omlaag", "cli")
    schedule = Schedule("daily", time(9, 0), DAY)
    first = await w.plans.add_action(
        goal, "Meten", schedule, "cli", "blood_pressure", limits={"above": [150, 95]}
    )
    second = await w.plans.change_action(first, "patient", schedule=Schedule("daily", time(18, 0), DAY))
    [view] = await w.plans.goals(w.patient_id)
    assert [a.id for a in view.actions] == [second]  # the ended one only with the history
    assert view.actions[0].limits == {"above": [150, 95]} and view.actions[0].replaces == first
    [full] = await w.plans.goals(w.patient_id, with_history=True)
    assert [(a.id, a.ended, a.next_due_at) for a in full.actions[:1]] == [(first, True, None)]
    with pytest.raises(PlanError):
        await w.plans.change_action(first, "patient", what="Nog eens")
    await w.plans.end_goal(goal)
    assert (
        await w.plans.goals(w.patient_id) == []
        and await w.plans.due_actions(local(DAY + timedelta(days=9), 9)) == []
    )


async def test_the_plan_made_in_the_chat_follows_the_answers(w: World) -> None:
    answers = {
        "goal": "Weer zelf naar de markt lopen",
        "action": "Elke dag een stukje wandelen",
        "often": "daily",
        "time": "20:00",
        "until": "4w",
        "measure": "none",
        "teachback": "Ik loop elke avond om 8 uur een rondje",
    }
    goal, action = await w.plans.add_from_chat(w.patient_id, answers)
    [view] = await w.plans.goals(w.patient_id)
    assert (view.id, view.text, view.teachback) == (goal, answers["goal"], answers["teachback"])
    [a] = view.actions
    assert (a.id, a.measurement, a.schedule.kind, a.schedule.at) == (action, None, "daily", time(20, 0))
    assert a.schedule.end == view.follow_up_on == date(2026, 12, 20)  # four weeks, as tests/test_reminders.py
    assert a.next_due_at == local(DAY, 20)
    assert w.store.tables.goals[goal]["author"] == "patient"
    _, measured = await w.plans.add_from_chat(w.patient_id, {**answers, "until": "open", "measure": "pain"})
    assert w.store.tables.actions[measured]["measurement"] == "pain"
