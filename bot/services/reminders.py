"""Reminders: from the plan's schedules to the patient's chat and back.

- ``materialise`` turns due actions (and weekly look backs) into reminder rows plus outbox rows,
  in one transaction per action, and moves the action's next due moment on. A reminder that is
  more than ``max_late`` overdue (the bot was down) is stored as missed and not sent.
- The outbox renders a reminder at send time: answered, erased or unreachable means nothing goes.
- Taps (:class:`~bot.callbacks.ReminderTap`, one method per op in ``TAPS``) and typed values or
  words answer a reminder. Every answer is committed with the Telegram update id.
  Outcomes can raise signals for the POH (streaks, thresholds, trends).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.callbacks import ReminderOp, ReminderTap
from bot.channels import Reply
from bot.clock import Clock
from bot.content import Catalog
from bot.flows.model import Button, OutMessage
from bot.services.agenda import REVIEW_ANSWERS
from bot.services.locks import KeyedLocks
from bot.services.measurements import KINDS, MeasurementError, Signal, SignalRules, parse, show
from bot.services.notices import PracticeNotices
from bot.services.plans import REVIEW_EVERY, PlanError, PlanService
from bot.services.readaloud import REPLAY
from bot.storage.models import OutboxItem, OutboxKind, Patient, PatientStatus, Reminder, ReminderStatus
from bot.storage.ports import UnitOfWork
from scheduler.schedules import QuietHours, Schedule, next_due, respect_quiet, to_utc

log = logging.getLogger(__name__)

OWN_VOICE = re.compile(r"/luister (\d+)")  # an action the patient spoke (see voice.marker)
BARRIERS = ("time", "forgot", "complaints", "motivation", "too_hard", "other")
NO_BARRIER = "none"
LATER = ("1h", "evening", "tomorrow")
EVENING = time(19, 30)
RETIME = ("08:00", "10:00", "12:00", "15:00", "18:00", "20:00")
# The answers an op takes after it (``r:<id>:b:time``); ops not named here take none.
OP_ARGS: dict[ReminderOp, tuple[str, ...]] = {
    ReminderOp.BARRIER: (*BARRIERS, NO_BARRIER),
    ReminderOp.SNOOZE: LATER,
    ReminderOp.REVIEW: REVIEW_ANSWERS,
    ReminderOp.TIME: RETIME,
}
# Ops that answer the reminder: a second one (a double tap, an old button) only gets a toast.
ANSWERS = (ReminderOp.DONE, ReminderOp.FAIL, ReminderOp.LATER, ReminderOp.SNOOZE, ReminderOp.REVIEW)


def data(reminder_id: int, op: ReminderOp, arg: str = "") -> str:
    return ReminderTap(reminder=reminder_id, op=op, arg=arg).pack()


def valid(tap: ReminderTap) -> bool:
    """The op's answer is one the bot offers (or it takes none)."""
    return tap.arg in OP_ARGS.get(tap.op, ("",))


Handler = Callable[["ReminderService", Patient, Reminder, str, datetime], Awaitable[Reply]]


class ReminderService:
    def __init__(
        self,
        repo: UnitOfWork,
        plans: PlanService,
        catalog: Catalog,
        clock: Clock,
        zone: ZoneInfo,
        *,
        quiet: QuietHours,
        max_late: timedelta,
        rules: SignalRules,
        locks: KeyedLocks,
        notices: PracticeNotices,
        max_text_chars: int = 2000,
    ) -> None:
        self.repo = repo
        self.notices = notices
        self.reminders = repo.reminders
        self.plans = plans
        self.catalog = catalog
        self.clock = clock
        self.zone = zone
        self.quiet = quiet
        self.max_late = max_late
        self.rules = rules
        self.locks = locks
        self.max_text_chars = max_text_chars

    def quiet_for(self, patient: Patient) -> QuietHours:
        if patient.quiet_start and patient.quiet_end:
            return QuietHours(time.fromisoformat(patient.quiet_start), time.fromisoformat(patient.quiet_end))
        return self.quiet

    # -- from schedules to rows ---------------------------------------------------------
    async def materialise(self, limit: int = 500) -> int:
        """Create the reminders that are due now; returns how many will be sent."""
        now = self.clock.now()
        queued = 0
        for _ in range(100):  # after long downtime an action may be due many times over
            ids = await self.plans.due_actions(now, limit)
            reviews = await self.reminders.due_reviews(now, limit)
            if not ids and not reviews:
                break
            for action_id in ids:
                queued += await self._materialise_action(action_id, now)
            for goal_id, patient_id, moment in reviews:
                queued += await self._materialise_review(goal_id, patient_id, moment, now)
        return queued

    async def _materialise_action(self, action_id: int, now: datetime) -> int:
        async with self.repo.transaction():
            due = await self.reminders.due_action(action_id)
            if due is None or due.next_due_at > now:
                return 0
            patient = await self.repo.patients.get(due.patient_id)
            quiet = self.quiet_for(patient) if patient else self.quiet
            schedule = Schedule.from_dict(json.loads(due.schedule_json))
            await self.reminders.set_next_due(
                action_id, next_due(schedule, due.next_due_at, self.zone, quiet)
            )
            if patient is None or not patient.reachable:
                return 0
            late = now - due.next_due_at > self.max_late
            rid = await self.reminders.add(
                patient.id,
                due.goal_id,
                action_id,
                "action",
                due.next_due_at,
                ReminderStatus.MISSED if late else ReminderStatus.PENDING,
                now,
            )
            if rid is None:
                return 0
            if late:
                log.info("reminder %s missed (the bot was not running)", rid)
                await self._after_outcome(patient, rid, now)
                return 0
            await self._queue(patient, rid, due.next_due_at, now)
            return 1

    async def _materialise_review(
        self, goal_id: int, patient_id: int, moment: datetime, now: datetime
    ) -> int:
        async with self.repo.transaction():
            patient = await self.repo.patients.get(patient_id)
            quiet = self.quiet_for(patient) if patient else self.quiet
            local_next = moment.astimezone(self.zone) + REVIEW_EVERY
            following = respect_quiet(
                to_utc(local_next.date(), local_next.time(), self.zone), self.zone, quiet
            )
            await self.reminders.set_next_review(goal_id, following)
            if patient is None or not patient.reachable or now - moment > self.max_late:
                return 0
            rid = await self.reminders.add(
                patient.id, goal_id, None, "review", moment, ReminderStatus.PENDING, now
            )
            if rid is None:
                return 0
            await self._queue(patient, rid, moment, now)
            return 1

    async def _queue(self, patient: Patient, reminder_id: int, due: datetime, now: datetime) -> None:
        """The reminder goes out through the outbox at ``due`` (rendered then, so never stale)."""
        payload = {"reminder_id": reminder_id}
        await self.repo.outbox.enqueue(
            OutboxKind.REMINDER, patient.telegram_chat_id or 0, payload, due, now, patient_id=patient.id
        )

    # -- rendering ------------------------------------------------------------------------
    async def render(self, item: OutboxItem) -> list[OutMessage] | None:
        """Outbox renderer for ``reminder`` rows."""
        reminder = await self.reminders.get(int(item.payload["reminder_id"]))
        if reminder is None or reminder.status not in (ReminderStatus.PENDING, ReminderStatus.LATER):
            return None
        patient = await self.repo.patients.get(reminder.patient_id)
        if patient is None or not patient.reachable:
            return None
        if self.clock.now() - item.due_at > self.max_late:
            await self.reminders.mark_missed(reminder.id)
            await self._after_outcome(patient, reminder.id, self.clock.now())
            log.info("reminder %s missed: too late to send", reminder.id)
            return None
        messages = [self.message(reminder, discreet=patient.discreet)]
        own_voice = OWN_VOICE.search(reminder.what)
        if own_voice and not patient.discreet:
            # The action was spoken, not typed: play the patient's own words with the reminder.
            note = await self.repo.voice_notes.get(int(own_voice[1]))
            if note is not None and note["patient_id"] == patient.id:
                replay = ((Button(self.catalog.t("voice.replay"), REPLAY),),)
                messages.append(OutMessage("", replay, voice=bytes(note["audio"])))
        return messages

    def message(self, r: Reminder, *, discreet: bool) -> OutMessage:
        t = self.catalog.t
        if discreet:
            return OutMessage(
                t(f"reminder.discreet_{r.kind}"),
                ((Button(t("reminder.buttons.show"), data(r.id, ReminderOp.SHOW)),),),
            )
        if r.kind == "review":
            buttons = tuple(
                Button(t(f"reminder.review_answers.{a}"), data(r.id, ReminderOp.REVIEW, a))
                for a in REVIEW_ANSWERS
            )
            return OutMessage(t("reminder.review", goal=r.goal_text), (buttons,), private=True)
        text = t("reminder.action", what=r.what)
        if r.measurement:
            text += "\n" + t("reminder.measure_hint", measurement=t(f"measure.names.{r.measurement}"))
        return OutMessage(
            text,
            (
                (Button(t("reminder.buttons.done"), data(r.id, ReminderOp.DONE)),),
                (Button(t("reminder.buttons.not_done"), data(r.id, ReminderOp.FAIL)),),
                (Button(t("reminder.buttons.later"), data(r.id, ReminderOp.LATER)),),
            ),
            private=True,
        )

    # -- answers --------------------------------------------------------------------------
    async def tap(self, patient: Patient, tap: ReminderTap | None, update_id: int | None) -> Reply:
        """A button under a reminder; None (forged, cut off, another patient's) is an old button."""
        async with self.locks(patient.id):
            reminder = await self.reminders.get(tap.reminder) if tap is not None and valid(tap) else None
            if tap is None or reminder is None or reminder.patient_id != patient.id:
                return self._reply(patient, "reminder.gone", toast=self.catalog.t("toast.old"))
            async with self.repo.transaction():
                if tap.op in ANSWERS and not reminder.open:
                    reply = self._to(patient, [], toast=self.catalog.t("toast.already"))
                else:
                    if tap.op is not ReminderOp.SHOW:
                        await self.reminders.clear_awaiting(patient.id)
                    reply = await TAPS[tap.op](self, patient, reminder, tap.arg, self.clock.now())
                if update_id is not None:
                    await self.repo.updates.mark_processed(update_id, self.clock.now())
            return reply

    # One method per op (the table ``TAPS`` below); each gets the reminder, the op's answer, now.
    async def _show(self, patient: Patient, r: Reminder, arg: str, now: datetime) -> Reply:
        return self._to(patient, [self._edit(self.message(r, discreet=False))])

    async def _done(self, patient: Patient, r: Reminder, arg: str, now: datetime) -> Reply:
        if r.measurement:
            await self.reminders.answer(r.id, now, awaiting="value")
            return self._ask_value(patient, r)
        await self.reminders.answer(r.id, now, status=ReminderStatus.DONE)
        return self._reply(patient, "reminder.well_done")

    async def _fail(self, patient: Patient, r: Reminder, arg: str, now: datetime) -> Reply:
        t = self.catalog.t
        await self.reminders.answer(r.id, now, status=ReminderStatus.NOT_DONE)
        signals = await self._after_outcome(patient, r.id, now)
        buttons = [
            (Button(t(f"reminder.barriers.{b}"), data(r.id, ReminderOp.BARRIER, b)),) for b in BARRIERS
        ]
        buttons.append((Button(t("reminder.buttons.no_answer"), data(r.id, ReminderOp.BARRIER, NO_BARRIER)),))
        question = OutMessage(t("reminder.what_got_in_the_way"), tuple(buttons))
        return self._with_signals(patient, signals, question)

    async def _barrier(self, patient: Patient, r: Reminder, arg: str, now: datetime) -> Reply:
        if arg == NO_BARRIER:
            return self._reply(patient, "reminder.thanks_next_time")
        await self.reminders.answer(r.id, now, barrier=arg, awaiting="note")
        no = (Button(self.catalog.t("reminder.buttons.no_thanks"), data(r.id, ReminderOp.NO_NOTE)),)
        return self._to(patient, [OutMessage(self.catalog.t("reminder.tell_more"), (no,))])

    async def _no_note(self, patient: Patient, r: Reminder, arg: str, now: datetime) -> Reply:
        return self._reply(patient, "reminder.thanks_next_time")

    async def _no_value(self, patient: Patient, r: Reminder, arg: str, now: datetime) -> Reply:
        if r.open:
            await self.reminders.answer(r.id, now, status=ReminderStatus.DONE)
        return self._reply(patient, "reminder.thanks_next_time")

    async def _later(self, patient: Patient, r: Reminder, arg: str, now: datetime) -> Reply:
        return self._to(patient, [self._later_question(patient, r)])

    async def _review(self, patient: Patient, r: Reminder, arg: str, now: datetime) -> Reply:
        t = self.catalog.t
        await self.reminders.answer(r.id, now, status=ReminderStatus.DONE, value=arg)
        choices = (
            (Button(t("reminder.buttons.keep"), data(r.id, ReminderOp.KEEP)),),
            (Button(t("reminder.buttons.other_time"), data(r.id, ReminderOp.RETIME)),),
        )
        return self._to(patient, [OutMessage(t("reminder.adjust"), choices)])

    async def _keep(self, patient: Patient, r: Reminder, arg: str, now: datetime) -> Reply:
        return self._reply(patient, "reminder.keep")

    async def _pick_time(self, patient: Patient, r: Reminder, arg: str, now: datetime) -> Reply:
        times = [Button(v, data(r.id, ReminderOp.TIME, v)) for v in RETIME]
        rows = tuple(tuple(times[i : i + 3]) for i in range(0, len(times), 3))
        return self._to(patient, [OutMessage(self.catalog.t("reminder.pick_time"), rows)])

    async def _retime(self, patient: Patient, r: Reminder, at: str, now: datetime) -> Reply:
        changed = 0
        for goal in await self.plans.goals(patient.id):
            if goal.id != r.goal_id:
                continue
            for action in goal.actions:
                schedule = Schedule.from_dict({**action.schedule.to_dict(), "at": at})
                try:
                    await self.plans.change_action(action.id, "patient", schedule=schedule)
                    changed += 1
                except PlanError:
                    continue
        key = "reminder.retimed" if changed else "reminder.nothing_to_change"
        return self._to(patient, [OutMessage(self.catalog.t(key, time=at), private=True)])

    def _later_question(self, patient: Patient, r: Reminder) -> OutMessage:
        t = self.catalog.t
        local = self.clock.now().astimezone(self.zone)
        options = [o for o in LATER if not (o == "evening" and local.time() >= EVENING)]
        rows = tuple((Button(t(f"reminder.later.{o}"), data(r.id, ReminderOp.SNOOZE, o)),) for o in options)
        return OutMessage(t("reminder.when_later"), rows)

    async def _snooze(self, patient: Patient, r: Reminder, choice: str, now: datetime) -> Reply:
        local = now.astimezone(self.zone)
        if choice == "1h":
            moment = now + timedelta(hours=1)
        elif choice == "evening":
            moment = to_utc(local.date(), EVENING, self.zone)
        else:
            at = Schedule.from_dict(json.loads(r.schedule_json)).at if r.schedule_json else time(9, 0)
            moment = to_utc(local.date() + timedelta(days=1), at, self.zone)
        moment = respect_quiet(max(moment, now), self.zone, self.quiet_for(patient))
        await self.reminders.answer(r.id, now, status=ReminderStatus.LATER, later=True)
        await self._queue(patient, r.id, moment, now)
        when = self.catalog.format_when(moment.astimezone(self.zone), "short")
        return self._to(patient, [OutMessage(self.catalog.t("reminder.snoozed", when=when), private=True)])

    def _ask_value(
        self, patient: Patient, r: Reminder, problem: str | None = None, *, note: str | None = None
    ) -> Reply:
        t = self.catalog.t
        assert r.measurement is not None
        lines = [t(problem)] if problem else []
        if note:
            lines.append(note)
        lines.append(t(f"measure.ask.{r.measurement}"))
        skip = (Button(t("reminder.buttons.no_value"), data(r.id, ReminderOp.NO_VALUE)),)
        return self._to(patient, [OutMessage("\n".join(lines), (skip,))])

    async def awaiting(self, patient: Patient) -> Reminder | None:
        return await self.reminders.awaiting(patient.id)

    async def text(self, patient: Patient, text: str, update_id: int | None) -> Reply | None:
        """Typed words for the reminder that waits for them; None when none waits."""
        async with self.locks(patient.id):
            r = await self.reminders.awaiting(patient.id)
            if r is None:
                return None
            now = self.clock.now()
            async with self.repo.transaction():
                reply = await self._text(patient, r, text, now)
                if update_id is not None:
                    await self.repo.updates.mark_processed(update_id, now)
            return reply

    async def reask(self, patient: Patient, note: str) -> Reply | None:
        """A note (why that input did not work), then the reminder question that waits; None if none."""
        r = await self.reminders.awaiting(patient.id)
        if r is None:
            return None
        if r.awaiting == "value":
            return self._ask_value(patient, r, note=note)
        no = (Button(self.catalog.t("reminder.buttons.no_thanks"), data(r.id, ReminderOp.NO_NOTE)),)
        text = f"{note}\n{self.catalog.t('reminder.tell_more')}"
        return self._to(patient, [OutMessage(text, (no,))])

    async def _text(self, patient: Patient, r: Reminder, text: str, now: datetime) -> Reply:
        if r.awaiting == "note":
            words = text.strip()
            if len(words) > self.max_text_chars:
                return self._reply(patient, "bad.text_too_long", max=self.max_text_chars)
            await self.reminders.answer(r.id, now, note=words)
            return self._reply(patient, "reminder.thanks_next_time")
        assert r.measurement in KINDS
        try:
            values = parse(r.measurement, text)
        except MeasurementError as exc:
            return self._ask_value(patient, r, exc.key)
        await self.reminders.answer(r.id, now, status=ReminderStatus.DONE, value=values)
        history = [x.value for x in reversed(await self.reminders.recent(r.action_id or 0, 12)) if x.value]
        signals = self.rules.check(r.measurement, history, r.limits)
        await self._signal(patient, signals, now)
        reply = OutMessage(self.catalog.t("measure.noted", value=show(r.measurement, values)), private=True)
        return self._with_signals(patient, signals, reply)

    # -- signals for the POH --------------------------------------------------------------
    async def _after_outcome(self, patient: Patient, reminder_id: int, now: datetime) -> list[Signal]:
        """After a not-done or missed reminder: a streak of them signals the POH."""
        r = await self.reminders.get(reminder_id)
        if r is None or r.action_id is None:
            return []
        streak = 0
        for earlier in await self.reminders.recent(r.action_id, self.rules.not_done_streak + 5):
            if earlier.status in (ReminderStatus.PENDING, ReminderStatus.LATER) and earlier.id != r.id:
                continue
            if earlier.status not in (ReminderStatus.NOT_DONE, ReminderStatus.MISSED):
                break
            streak += 1
        signals = self.rules.check_streak(streak)
        await self._signal(patient, signals, now)
        return signals

    async def _signal(self, patient: Patient, signals: list[Signal], now: datetime) -> None:
        for signal in signals:
            payload = {
                "patient_id": patient.id,
                "rule": signal.rule,
                "kind": signal.kind,
                "detail": signal.detail,
            }
            await self.notices.tell(OutboxKind.SIGNAL, patient.practice_id, payload, now)
            log.info("signal %s/%s for patient %s", signal.kind, signal.rule, patient.id)

    def _with_signals(self, patient: Patient, signals: list[Signal], message: OutMessage) -> Reply:
        notes = [OutMessage(self.catalog.t("measure.told_practice")) for s in signals if s.tell_patient][:1]
        return self._to(patient, [message, *notes])

    async def render_signal(self, item: OutboxItem) -> list[OutMessage] | None:
        """Outbox renderer for ``signal`` rows (to the POH): no patient words, only what happened."""
        p = item.payload
        patient = await self.repo.patients.get(int(p["patient_id"]))
        if patient is None or patient.status == PatientStatus.ERASED:
            return None
        consult = await self.repo.consults.latest(patient.id)
        name = self.catalog.t(f"measure.names.{p['kind']}") if p["kind"] in KINDS else ""
        text = self.catalog.t(
            f"clinician.signal.{p['rule']}",
            consult=consult.id if consult else "?",
            name=name,
            detail=p["detail"],
        )
        return [OutMessage(text)]

    async def patient_blocked(self, item: OutboxItem) -> None:
        """Telegram said 403 for a patient: mark them unreachable, stop sending, tell the POH."""
        if item.patient_id is None:
            return
        now = self.clock.now()
        async with self.repo.transaction():
            if not await self.repo.patients.set_blocked(item.patient_id, now):
                return
            await self.reminders.cancel_pending_outbox(item.patient_id)
            patient = await self.repo.patients.get(item.patient_id)
            if patient is None:
                return
            await self.notices.tell(OutboxKind.BLOCKED, patient.practice_id, {"patient_id": patient.id}, now)
        log.warning("patient %s blocked the bot; reminders stopped", item.patient_id)

    async def delivery_rejected(self, item: OutboxItem) -> None:
        """Telegram refused a row (400): tell the practice which kind of message did not go out
        (never its text). A refused notice is not noticed again."""
        if item.kind == OutboxKind.REJECTED or item.patient_id is None:
            return
        patient = await self.repo.patients.get(item.patient_id)
        if patient is None:
            return
        payload: dict[str, Any] = {"patient_id": patient.id, "kind": item.kind}
        async with self.repo.transaction():
            waiting = await self.repo.outbox.rows(OutboxKind.REJECTED)
            if any(r["status"] == "pending" and r["payload"] == payload for r in waiting):
                return  # one notice per patient and kind until it went out, not one per row
            await self.notices.tell(OutboxKind.REJECTED, patient.practice_id, payload, self.clock.now())

    async def render_rejected(self, item: OutboxItem) -> list[OutMessage] | None:
        kind = str(item.payload.get("kind", "other"))
        kinds = self.catalog.raw("clinician.outbox_kinds")
        what = kinds.get(kind, kinds["other"]) if isinstance(kinds, dict) else kind
        consult = await self.repo.consults.latest(int(item.payload["patient_id"]))
        number = consult.id if consult else None
        return [OutMessage(self.catalog.t("clinician.rejected", what=what, consult=number))]

    async def render_blocked(self, item: OutboxItem) -> list[OutMessage] | None:
        patient = await self.repo.patients.get(int(item.payload["patient_id"]))
        if patient is None or not patient.blocked:
            return None
        consult = await self.repo.consults.latest(patient.id)
        return [OutMessage(self.catalog.t("clinician.blocked", consult=consult.id if consult else "?"))]

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _to(patient: Patient, messages: list[OutMessage], *, toast: str | None = None) -> Reply:
        return Reply(patient.telegram_chat_id or 0, messages, toast=toast, patient_id=patient.id)

    def _reply(self, patient: Patient, key: str, *, toast: str | None = None, **params: Any) -> Reply:
        return self._to(patient, [OutMessage(self.catalog.t(key, **params))], toast=toast)

    @staticmethod
    def _edit(message: OutMessage) -> OutMessage:
        return OutMessage(message.text, message.buttons, edit=True)


TAPS: dict[ReminderOp, Handler] = {
    ReminderOp.SHOW: ReminderService._show,
    ReminderOp.DONE: ReminderService._done,
    ReminderOp.FAIL: ReminderService._fail,
    ReminderOp.LATER: ReminderService._later,
    ReminderOp.BARRIER: ReminderService._barrier,
    ReminderOp.NO_NOTE: ReminderService._no_note,
    ReminderOp.NO_VALUE: ReminderService._no_value,
    ReminderOp.SNOOZE: ReminderService._snooze,
    ReminderOp.REVIEW: ReminderService._review,
    ReminderOp.KEEP: ReminderService._keep,
    ReminderOp.RETIME: ReminderService._pick_time,
    ReminderOp.TIME: ReminderService._retime,
}
