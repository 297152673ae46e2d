"""The patient's side of the conversation: runs the intake engine and stores every step.

Rules kept here:
- an answer is committed (with the Telegram update id) before the next question goes out;
- one patient's inputs are handled one at a time (double taps, parallel updates);
- no patient text, names or Telegram ids are logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

from bot.callbacks import CheckTap, EraseTap
from bot.channels import Reply
from bot.clock import Clock
from bot.content import Catalog
from bot.flows.engine import DECLINED, DONE, INTAKE_FLOW, PLAN_FLOW, FlowContext, FlowEngine, FlowState
from bot.flows.model import (
    Button,
    Command,
    Completed,
    DeleteAnswer,
    Effect,
    Input,
    OutMessage,
    RecordConsent,
    Result,
    SaveAnswer,
    SetPreference,
    Text,
    Unsupported,
)
from bot.nlp.safety import SafetyResult
from bot.services.locks import KeyedLocks
from bot.services.notices import PracticeNotices
from bot.services.plans import ActionView, PlanService, describe_schedule
from bot.services.reminders import ReminderService
from bot.services.safety import SafetyService
from bot.storage.models import (
    Consult,
    ConsultStatus,
    Conversation,
    OutboxItem,
    OutboxKind,
    Patient,
    PatientStatus,
)
from bot.storage.ports import UnitOfWork
from scheduler.schedules import respect_quiet

log = logging.getLogger(__name__)

ERASE_VALID = timedelta(minutes=10)  # a "yes" button older than this (or forged) erases nothing


class PatientService:
    def __init__(
        self,
        repo: UnitOfWork,
        engines: dict[str, FlowEngine],
        catalog: Catalog,
        clock: Clock,
        zone: ZoneInfo,
        safety: SafetyService,
        *,
        plans: PlanService,
        reminders: ReminderService,
        locks: KeyedLocks,
        notices: PracticeNotices,
        plan_invite_after: timedelta | None = None,
    ) -> None:
        self.notices = notices
        self.safety = safety
        self.repo = repo
        self.engines = engines
        self.engine = engines[INTAKE_FLOW]
        self.catalog = catalog
        self.clock = clock
        self.zone = zone
        self.plans = plans
        self.reminders = reminders
        self.locks = locks
        self.plan_invite_after = plan_invite_after  # after the consult: shall we make your plan?
        # Signs the erase button; a new key per process, so a button from before a restart is old.
        self._erase_key = secrets.token_bytes(32)

    # -- helpers --------------------------------------------------------------------
    async def context(self, consult: Consult) -> FlowContext:
        practice = await self.repo.practices.get(consult.practice_id)
        patient = await self.repo.patients.get(consult.patient_id)
        return FlowContext(
            practice_name=practice.name if practice else "",
            consult_when=self.catalog.format_when(consult.scheduled_at.astimezone(self.zone)),
            read_aloud=patient.read_aloud if patient else None,
            simple_mode=patient.simple_mode if patient else None,
        )

    def _reply(
        self,
        patient: Patient,
        messages: list[OutMessage],
        *,
        seq: int | None = None,
        toast: str | None = None,
    ) -> Reply:
        return Reply(
            chat_id=patient.telegram_chat_id or 0,
            messages=messages,
            toast=toast,
            patient_id=patient.id,
            seq=seq,
        )

    def _note(self, patient: Patient, key: str) -> Reply:
        return self._reply(patient, [OutMessage(self.catalog.t(key))])

    async def _load(self, patient: Patient) -> tuple[Conversation, Consult, FlowState, FlowContext] | None:
        conv = await self.repo.conversations.get(patient.id)
        if conv is None:
            return None
        consult = await self.repo.consults.get(conv.consult_id)
        if consult is None:
            return None
        return conv, consult, FlowState.from_dict(conv.state), await self.context(consult)

    def engine_of(self, conv: Conversation) -> FlowEngine:
        return self.engines[conv.flow]

    async def _commit(
        self,
        patient: Patient,
        consult: Consult,
        result: Result,
        update_id: int | None,
        *,
        flow: str = INTAKE_FLOW,
        paused: bool = False,
    ) -> None:
        now = self.clock.now()
        async with self.repo.transaction():
            for effect in result.effects:
                await self._apply(patient, consult, effect, flow, result.state)
            await self.repo.conversations.save(
                patient.id, consult.id, flow, result.state.to_dict(), now, paused=paused
            )
            if update_id is not None:
                await self.repo.updates.mark_processed(update_id, now)

    async def _apply(
        self, patient: Patient, consult: Consult, effect: Effect, flow: str, state: FlowState
    ) -> None:
        now = self.clock.now()
        if flow == PLAN_FLOW:
            # The plan's answers live in the conversation state until the patient confirms.
            if isinstance(effect, Completed):
                goal, action = await self.plans.add_from_chat(patient.id, state.answers)
                log.info("patient %s made a plan in the chat: goal %s, action %s", patient.id, goal, action)
            return
        if isinstance(effect, SetPreference):
            await self.repo.patients.set_preference(patient.id, effect.name, effect.value)
        elif isinstance(effect, SaveAnswer):
            await self.repo.answers.save(consult.id, effect.key, effect.value, now)
        elif isinstance(effect, DeleteAnswer):
            await self.repo.answers.delete(consult.id, effect.key)
        elif isinstance(effect, RecordConsent):
            await self.repo.consents.add(
                patient.id, consult.id, self.catalog.consent_version(), effect.given, now
            )
            await self.repo.consults.set_status(
                consult.id, ConsultStatus.IN_PROGRESS if effect.given else ConsultStatus.DECLINED
            )
            log.info("consent %s for consult %s", "given" if effect.given else "declined", consult.id)
        elif isinstance(effect, Completed):
            await self.repo.consults.set_status(consult.id, ConsultStatus.READY, now)
            await self.notices.tell(
                OutboxKind.AGENDA,
                consult.practice_id,
                {"consult_id": consult.id},
                now,
                clinician_id=consult.clinician_id,
                consult_id=consult.id,
            )
            if self.plan_invite_after is not None:
                moment = max(now, consult.scheduled_at + self.plan_invite_after)
                moment = respect_quiet(moment, self.zone, self.reminders.quiet_for(patient))
                await self.repo.outbox.enqueue_plan_start(patient, consult.id, moment, now)
            log.info("intake completed for consult %s", consult.id)

    # -- entry points -----------------------------------------------------------------
    async def begin(
        self, patient: Patient, consult: Consult, update_id: int | None, *, flow: str = INTAKE_FLOW
    ) -> Reply:
        """Start a conversation (the intake, or the plan). The caller holds ``self.locks(patient.id)``."""
        previous = await self.repo.conversations.get(patient.id)
        result = self.engines[flow].start(
            await self.context(consult), after_seq=previous.seq if previous else 0
        )
        await self._commit(patient, consult, result, update_id, flow=flow)
        log.info("%s started for consult %s", flow, consult.id)
        return self._reply(patient, result.messages, seq=result.state.seq)

    async def handle(self, patient: Patient, inp: Input, update_id: int | None = None) -> Reply:
        if isinstance(inp, Text) and (tap := await self.safety.typed_answer(patient, inp.text)) is not None:
            return await self.answer_check(patient, tap, update_id)
        words = inp.text if isinstance(inp, Text | Unsupported) else None
        danger = self.safety.assess(words)
        flags = danger.route
        if isinstance(inp, Text):
            # Typed words a reminder waits for (a measurement, what got in the way) go there.
            reply = await self.reminders.text(patient, inp.text, update_id)
            if reply is not None:
                return await self._with_safety(reply, patient, None, danger)
        elif isinstance(inp, Unsupported) and inp.kind != "edited" and not danger:
            key = "bad.voice" if inp.kind == "voice" else "bad.media"
            reply = await self.reminders.reask(patient, self.catalog.t(key))
            if reply is not None:
                return reply
        async with self.locks(patient.id):
            patient = await self.repo.patients.get(patient.id, fresh=True) or patient
            loaded = await self._load(patient)
            if patient.status == PatientStatus.STOPPED or loaded is None:
                reply = self._note(patient, "stopped" if loaded else "unknown_user")
                return await self._with_safety(reply, patient, loaded[1].id if loaded else None, danger)
            conv, consult, state, ctx = loaded
            engine = self.engine_of(conv)
            result = engine.handle(state, inp, ctx)
            if not (danger or result.changed or conv.paused):
                # Bad input, a re-ask, a double tap: nothing to store, so no write transaction.
                return self._reply(patient, result.messages, seq=result.state.seq, toast=result.toast)
            async with self.repo.transaction():
                settled = result.state.step in (DONE, DECLINED) and not result.state.hold
                if flags:
                    notes = await self.safety.route_notes(patient, consult.id, flags)
                    if settled:
                        # Nothing to pause: the route, then what the flow says anyway.
                        result = Result(
                            result.state, [*notes, *result.messages], result.effects, changed=True
                        )
                    else:
                        # Keep whatever the step stored, then stop the flow: the route first.
                        held = engine.hold(result.state, ctx, (m.text for m in notes))
                        result = Result(held.state, held.messages, result.effects, changed=True)
                elif danger:
                    if settled or result.state.hold:
                        # Nothing to pause, or paused already (after a route): only the question.
                        question = await self.safety.ask(patient, consult.id, danger.check)
                        result = Result(result.state, [question], result.effects, changed=True)
                    else:
                        # Keep what the step stored; the flow waits while the question is open.
                        held = engine.hold(result.state, ctx, ())
                        question = await self.safety.ask(patient, consult.id, danger.check, held.state.seq)
                        result = Result(held.state, [question], result.effects, changed=True)
                if result.changed or conv.paused:
                    await self._commit(patient, consult, result, update_id, flow=conv.flow)
            return self._reply(patient, result.messages, seq=result.state.seq, toast=result.toast)

    async def _with_safety(
        self, reply: Reply, patient: Patient, consult_id: int | None, danger: SafetyResult
    ) -> Reply:
        """Outside the flow (a reminder's note, after /stop): the route before the reply, or the
        one question after it (the message with the buttons comes last)."""
        if danger.route:
            reply.messages[:0] = await self.safety.route_notes(patient, consult_id, danger.route)
        elif danger.check:
            reply.messages.append(await self.safety.ask(patient, consult_id, danger.check))
        return reply

    async def answer_check(
        self, patient: Patient, tap: CheckTap | None, update_id: int | None = None
    ) -> Reply:
        """The patient's yes or no to a check question (tapped, or typed). An old, forged or
        double tap (None, or answered before) only gets a toast."""
        async with self.locks(patient.id):
            answered = await self.safety.answer(patient, tap) if tap else None
            if answered is None:
                return Reply(patient.telegram_chat_id or 0, [], toast=self.catalog.t("toast.old"))
            check, notes = answered
            loaded = await self._load(patient)
            if loaded is None or check is None:
                return self._reply(patient, notes)
            conv, consult, state, ctx = loaded
            engine = self.engine_of(conv)
            if state.hold and check.held_seq == state.seq and not (tap and tap.yes):
                # The question paused the flow and nothing else happened since: go on.
                result = engine.release(state, ctx, (m.text for m in notes))
                await self._commit(patient, consult, result, update_id, flow=conv.flow)
                return self._reply(patient, result.messages, seq=result.state.seq)
            if state.step in (DONE, DECLINED) and not state.hold:
                return self._reply(patient, notes)
            return self._reply(patient, engine.ask(state, ctx, (m.text for m in notes)), seq=state.seq)

    async def takes_words(self, patient: Patient) -> bool:
        """Does what waits now take free words (a text question, a reminder's note)? A voice
        answer is transcribed only then; elsewhere it is a voice message where a button is expected."""
        waiting = await self.reminders.awaiting(patient)
        if waiting is not None:
            return waiting.awaiting == "note"
        conv = await self.repo.conversations.get(patient.id)
        if conv is None or conv.paused:
            return False
        return self.engine_of(conv).takes_free_text(FlowState.from_dict(conv.state))

    async def reask(self, patient: Patient, note: str) -> Reply:
        """A short note, then whatever question waits (a reminder's, or the conversation's)."""
        waiting = await self.reminders.reask(patient, note)
        if waiting is not None:
            return waiting
        loaded = await self._load(patient)
        if loaded is None:
            return self._reply(patient, [OutMessage(note)])
        conv, _, state, ctx = loaded
        return self._reply(patient, self.engine_of(conv).ask(state, ctx, [note]), seq=state.seq)

    async def start_plan(self, patient: Patient, update_id: int | None = None) -> Reply:
        """The patient's own plan, after a consult (``/plan`` or the invitation after the consult)."""
        async with self.locks(patient.id):
            patient = await self.repo.patients.get(patient.id, fresh=True) or patient
            loaded = await self._load(patient)
            consult = await self.repo.consults.latest(patient.id)
            if consult is None or not patient.reachable:
                return self._note(patient, "unknown_user" if consult is None else "stopped")
            if loaded is not None:
                conv, _, state, ctx = loaded
                if state.step == DECLINED:
                    # No consent to the questions: no plan questions either.
                    return self._reply(patient, self.engine_of(conv).ask(state, ctx))
                if state.step != DONE or state.hold:
                    # Busy with another conversation: finish that first.
                    note = self.catalog.t("plan.busy")
                    return self._reply(patient, self.engine_of(conv).ask(state, ctx, [note]), seq=state.seq)
            return await self.begin(patient, consult, update_id, flow=PLAN_FLOW)

    async def render_plan_start(self, item: OutboxItem) -> list[OutMessage] | None:
        """Outbox renderer for ``plan_start``: after the consult, invite the patient to make a plan.
        Nothing is sent when they already made one since, or are busy with questions."""
        patient = await self.repo.patients.get(item.patient_id or 0)
        consult = await self.repo.consults.get(int(item.payload["consult_id"]))
        if patient is None or consult is None or not patient.reachable:
            return None
        if await self.plans.has_goal_since(patient.id, consult.scheduled_at):
            return None
        loaded = await self._load(patient)
        if loaded is not None and loaded[0].flow == PLAN_FLOW and not loaded[2].history:
            # Started on an earlier try whose delivery failed: ask the first question again.
            _, _, state, ctx = loaded
            return [OutMessage(self.catalog.t("plan.invite")), *self.engines[PLAN_FLOW].ask(state, ctx)]
        if loaded is not None and (loaded[2].step != DONE or loaded[2].hold):
            return None
        reply = await self.start_plan(patient)
        return [OutMessage(self.catalog.t("plan.invite")), *reply.messages]

    async def show_plan(self, patient: Patient) -> Reply:
        goals = await self.plans.goals(patient.id)
        if not goals:
            return self._note(patient, "plan.none")
        text = self.catalog.render_template("plan.txt.j2", goals=goals, when=self._when_action)
        return self._reply(patient, [OutMessage(text)])

    def _when_action(self, action: ActionView) -> str:
        return describe_schedule(self.catalog, action.schedule)

    async def set_discreet(self, patient: Patient, on: bool) -> Reply:
        await self.repo.patients.set_settings(
            patient.id, discreet=on, quiet_start=patient.quiet_start, quiet_end=patient.quiet_end
        )
        return self._note(patient, "discreet_on" if on else "discreet_off")

    async def command(
        self, patient: Patient, name: str, update_id: int | None = None, *, text: str | None = None
    ) -> Reply:
        """Conversation commands: start, resume, pause, help, stop, erase, plan; back and unknown go to
        the flow. ``text`` is the whole message: words after a command are read for safety too."""
        if text and self.safety.assess(text):
            return await self.handle(patient, Unsupported("command", text=text), update_id)
        if name in ("back", "unknown"):
            return await self.handle(patient, Command(name), update_id)
        if name == "plan":
            return await self.start_plan(patient, update_id)
        if name == "myplan":
            return await self.show_plan(patient)
        if name == "discreet":
            return await self.set_discreet(patient, not patient.discreet)
        if name == "read_aloud":
            on = not patient.read_aloud
            await self.repo.patients.set_preference(patient.id, "read_aloud", on)
            return self._note(patient, "read_aloud_on" if on else "read_aloud_off")
        async with self.locks(patient.id):
            patient = await self.repo.patients.get(patient.id, fresh=True) or patient
            if name == "erase":
                return self._reply(
                    patient,
                    [
                        OutMessage(
                            self.catalog.t("erase_confirm"),
                            buttons=(
                                (Button(self.catalog.t("buttons.erase_yes"), self._erase_yes(patient)),),
                                (Button(self.catalog.t("buttons.erase_no"), EraseTap(answer="no").pack()),),
                            ),
                        )
                    ],
                )
            if patient.status == PatientStatus.STOPPED and name not in ("start", "resume"):
                return self._note(patient, "stopped")
            loaded = await self._load(patient)
            if loaded is None:
                return self._note(patient, "unknown_user")
            conv, consult, state, ctx = loaded
            engine = self.engine_of(conv)
            if name == "stop":
                await self.repo.patients.set_status(patient.id, PatientStatus.STOPPED)
                log.info("patient %s stopped", patient.id)
                return self._note(patient, "stop")
            if name == "pause":
                await self.repo.conversations.set_paused(patient.id, True)
                return self._note(patient, "pause")
            if name == "help":
                return self._reply(patient, engine.ask(state, ctx, [self.catalog.t("help")]), seq=state.seq)
            # start / resume
            if patient.status == PatientStatus.STOPPED:
                await self.repo.patients.set_status(patient.id, PatientStatus.ACTIVE)
            if state.step == DECLINED:
                async with self.repo.transaction():
                    result = engine.restart_after_decline(state, ctx)
                    await self.repo.consults.set_status(consult.id, ConsultStatus.INVITED)
                    await self._commit(patient, consult, result, update_id, flow=conv.flow)
                return self._reply(patient, result.messages, seq=result.state.seq)
            if conv.paused:
                await self.repo.conversations.set_paused(patient.id, False)
            note = "start_in_progress" if name == "start" and not conv.paused else "resume"
            return self._reply(patient, engine.ask(state, ctx, [self.catalog.t(note)]), seq=state.seq)

    def _erase_signature(self, patient_id: int, asked: int) -> str:
        message = f"{patient_id}:{asked}".encode()
        return hmac.new(self._erase_key, message, hashlib.sha256).hexdigest()[:16]

    def _erase_yes(self, patient: Patient) -> str:
        asked = int(self.clock.now().timestamp())
        signature = self._erase_signature(patient.id, asked)
        return EraseTap(answer="yes", asked=asked, signature=signature).pack()

    def _erase_fresh(self, patient: Patient, tap: EraseTap) -> bool:
        """A "yes" this process gave this patient less than ``ERASE_VALID`` ago."""
        if tap.asked is None or not tap.signature.isascii():
            return False
        age = self.clock.now().timestamp() - tap.asked
        expected = self._erase_signature(patient.id, tap.asked)
        fresh = 0 <= age <= ERASE_VALID.total_seconds()
        return fresh and hmac.compare_digest(tap.signature.encode(), expected.encode())

    async def erase(self, patient: Patient, tap: EraseTap | None) -> Reply:
        """A tap on the erase question: no, or a fresh signed yes. An old, forged or unreadable
        yes erases nothing and says how to ask again."""
        confirmed = tap is None or tap.answer == "yes"
        if confirmed and not (tap is not None and self._erase_fresh(patient, tap)):
            log.info("patient %s tapped an old or unknown erase button", patient.id)
            return self._note(patient, "erase_expired")
        async with self.locks(patient.id):
            if not confirmed:
                loaded = await self._load(patient)
                note = [self.catalog.t("erase_cancelled")]
                if loaded is None:
                    return self._reply(patient, [OutMessage(note[0])])
                conv, _, state, ctx = loaded
                return self._reply(patient, self.engine_of(conv).ask(state, ctx, note), seq=state.seq)
            await self.repo.patients.erase(patient.id, self.clock.now())
            log.info("patient %s erased their data", patient.id)
            return Reply(
                chat_id=patient.telegram_chat_id or 0, messages=[OutMessage(self.catalog.t("erase_done"))]
            )

    async def deliver_later(self, reply: Reply, messages: list[OutMessage], after_seconds: float) -> None:
        """Telegram held a direct reply back: queue what did not go out (sent in order, after
        ``after_seconds``; a patient who is erased meanwhile gets nothing)."""
        if not messages:
            return
        now = self.clock.now()
        payload = {"messages": [replace(m, edit=False).to_dict() for m in messages], "seq": reply.seq}
        due = now + timedelta(seconds=max(after_seconds, 1.0))
        async with self.repo.transaction():
            await self.repo.outbox.enqueue(
                OutboxKind.REPLY, reply.chat_id, payload, due, now, patient_id=reply.patient_id
            )

    async def render_reply(self, item: OutboxItem) -> list[OutMessage] | None:
        """Outbox renderer for ``reply`` rows (the stored messages, unless the patient was erased)."""
        if item.patient_id is not None:
            patient = await self.repo.patients.get(item.patient_id)
            if patient is None or patient.status == PatientStatus.ERASED:
                return None
        return [OutMessage.from_dict(m) for m in item.payload["messages"]]

    async def delivered(self, patient_id: int, seq: int) -> None:
        """The channel delivered everything up to question ``seq``."""
        await self.repo.conversations.mark_prompted(patient_id, seq)

    async def pending_prompts(self) -> list[Reply]:
        """After a restart: questions that were committed but maybe never shown."""
        replies = []
        for conv in await self.repo.conversations.unprompted():
            patient = await self.repo.patients.get(conv.patient_id)
            consult = await self.repo.consults.get(conv.consult_id)
            if patient is None or consult is None:
                continue
            state = FlowState.from_dict(conv.state)
            messages = self.engine_of(conv).ask(state, await self.context(consult))
            replies.append(self._reply(patient, messages, seq=state.seq))
        return replies
