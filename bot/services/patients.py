"""The patient's side of the conversation: runs the intake engine and stores every step.

Rules kept here:
- an answer is committed (with the Telegram update id) before the next question goes out;
- one patient's inputs are handled one at a time (double taps, parallel updates);
- no patient text, names or Telegram ids are logged.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from zoneinfo import ZoneInfo

from bot.channels import Reply
from bot.clock import Clock
from bot.content import Catalog
from bot.flows.intake import DECLINED, INTAKE_FLOW, IntakeContext, IntakeEngine, IntakeState
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
    Text,
    Unsupported,
)
from bot.services.safety import SafetyService
from bot.storage.repo import Consult, Conversation, Patient, Repository

log = logging.getLogger(__name__)

ERASE_YES = "wis:yes"
ERASE_NO = "wis:no"


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: int) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock


class PatientService:
    def __init__(
        self,
        repo: Repository,
        engine: IntakeEngine,
        catalog: Catalog,
        clock: Clock,
        zone: ZoneInfo,
        safety: SafetyService,
    ) -> None:
        self.safety = safety
        self.repo = repo
        self.engine = engine
        self.catalog = catalog
        self.clock = clock
        self.zone = zone
        self.locks = KeyedLocks()

    # -- helpers --------------------------------------------------------------------
    async def context(self, consult: Consult) -> IntakeContext:
        practice = await self.repo.get_practice(consult.practice_id)
        return IntakeContext(
            practice_name=practice.name if practice else "",
            consult_when=self.catalog.format_when(consult.scheduled_at.astimezone(self.zone)),
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

    async def _load(
        self, patient: Patient
    ) -> tuple[Conversation, Consult, IntakeState, IntakeContext] | None:
        conv = await self.repo.get_conversation(patient.id)
        if conv is None:
            return None
        consult = await self.repo.get_consult(conv.consult_id)
        if consult is None:
            return None
        return conv, consult, IntakeState.from_dict(conv.state), await self.context(consult)

    async def _commit(
        self,
        patient: Patient,
        consult: Consult,
        result: Result,
        update_id: int | None,
        *,
        paused: bool = False,
    ) -> None:
        now = self.clock.now()
        async with self.repo.transaction():
            for effect in result.effects:
                await self._apply(patient, consult, effect)
            await self.repo.save_conversation(
                patient.id, consult.id, INTAKE_FLOW, result.state.to_dict(), now, paused=paused
            )
            if update_id is not None:
                await self.repo.mark_processed(update_id, now)

    async def _apply(self, patient: Patient, consult: Consult, effect: Effect) -> None:
        now = self.clock.now()
        if isinstance(effect, SaveAnswer):
            await self.repo.save_answer(consult.id, effect.key, effect.value, now)
        elif isinstance(effect, DeleteAnswer):
            await self.repo.delete_answer(consult.id, effect.key)
        elif isinstance(effect, RecordConsent):
            await self.repo.add_consent(
                patient.id, consult.id, self.catalog.consent_version(), effect.given, now
            )
            await self.repo.set_consult_status(consult.id, "in_progress" if effect.given else "declined")
            log.info("consent %s for consult %s", "given" if effect.given else "declined", consult.id)
        elif isinstance(effect, Completed):
            await self.repo.set_consult_status(consult.id, "ready", now)
            for clinician in await self.repo.agenda_recipients(consult.practice_id, consult.clinician_id):
                await self.repo.enqueue(
                    "agenda",
                    clinician.telegram_chat_id or 0,
                    {"consult_id": consult.id},
                    now,
                    now,
                    consult_id=consult.id,
                )
            log.info("intake completed for consult %s", consult.id)

    # -- entry points -----------------------------------------------------------------
    async def begin(self, patient: Patient, consult: Consult, update_id: int | None) -> Reply:
        """Start the intake for a consult. The caller holds ``self.locks(patient.id)``."""
        previous = await self.repo.get_conversation(patient.id)
        result = self.engine.start(await self.context(consult), after_seq=previous.seq if previous else 0)
        await self._commit(patient, consult, result, update_id)
        log.info("intake started for consult %s", consult.id)
        return self._reply(patient, result.messages, seq=result.state.seq)

    async def handle(self, patient: Patient, inp: Input, update_id: int | None = None) -> Reply:
        words = inp.text if isinstance(inp, Text | Unsupported) else None
        flags = self.safety.detect(words) if words else []
        async with self.locks(patient.id):
            patient = await self.repo.get_patient(patient.id) or patient
            loaded = await self._load(patient)
            if patient.status == "stopped" or loaded is None:
                reply = self._note(patient, "stopped" if loaded else "unknown_user")
                if flags:
                    told = await self.safety.record(patient, loaded[1].id if loaded else None, flags)
                    notes = self.safety.notes(flags, practice_told=told)
                    reply.messages[:0] = [OutMessage(n) for n in notes]
                return reply
            conv, consult, state, ctx = loaded
            result = self.engine.handle(state, inp, ctx)
            if not (flags or result.changed or conv.paused):
                # Bad input, a re-ask, a double tap: nothing to store, so no write transaction.
                return self._reply(patient, result.messages, seq=result.state.seq, toast=result.toast)
            async with self.repo.transaction():
                if flags:
                    # Keep whatever the step stored, then stop the flow: the route first.
                    told = await self.safety.record(patient, consult.id, flags)
                    held = self.engine.hold(result.state, ctx, self.safety.notes(flags, practice_told=told))
                    result = Result(held.state, held.messages, result.effects, changed=True)
                if result.changed or conv.paused:
                    await self._commit(patient, consult, result, update_id)
            return self._reply(patient, result.messages, seq=result.state.seq, toast=result.toast)

    async def command(
        self, patient: Patient, name: str, update_id: int | None = None, *, text: str | None = None
    ) -> Reply:
        """Conversation commands: start, resume, pause, help, stop, erase; back and unknown go to
        the flow. ``text`` is the whole message: words after a command are read for safety too."""
        if text and self.safety.detect(text):
            return await self.handle(patient, Unsupported("command", text=text), update_id)
        if name in ("back", "unknown"):
            return await self.handle(patient, Command(name), update_id)
        async with self.locks(patient.id):
            patient = await self.repo.get_patient(patient.id) or patient
            if name == "erase":
                return self._reply(
                    patient,
                    [
                        OutMessage(
                            self.catalog.t("erase_confirm"),
                            buttons=(
                                (Button(self.catalog.t("buttons.erase_yes"), ERASE_YES),),
                                (Button(self.catalog.t("buttons.erase_no"), ERASE_NO),),
                            ),
                        )
                    ],
                )
            if patient.status == "stopped" and name not in ("start", "resume"):
                return self._note(patient, "stopped")
            loaded = await self._load(patient)
            if loaded is None:
                return self._note(patient, "unknown_user")
            conv, consult, state, ctx = loaded
            if name == "stop":
                await self.repo.set_patient_status(patient.id, "stopped")
                log.info("patient %s stopped", patient.id)
                return self._note(patient, "stop")
            if name == "pause":
                await self.repo.set_paused(patient.id, True)
                return self._note(patient, "pause")
            if name == "help":
                return self._reply(
                    patient, self.engine.ask(state, ctx, [self.catalog.t("help")]), seq=state.seq
                )
            # start / resume
            if patient.status == "stopped":
                await self.repo.set_patient_status(patient.id, "active")
            if state.step == DECLINED:
                async with self.repo.transaction():
                    result = self.engine.restart_after_decline(state, ctx)
                    await self.repo.set_consult_status(consult.id, "invited")
                    await self._commit(patient, consult, result, update_id)
                return self._reply(patient, result.messages, seq=result.state.seq)
            if conv.paused:
                await self.repo.set_paused(patient.id, False)
            note = "start_in_progress" if name == "start" and not conv.paused else "resume"
            return self._reply(patient, self.engine.ask(state, ctx, [self.catalog.t(note)]), seq=state.seq)

    async def erase(self, patient: Patient, confirmed: bool) -> Reply:
        async with self.locks(patient.id):
            if not confirmed:
                loaded = await self._load(patient)
                note = [self.catalog.t("erase_cancelled")]
                if loaded is None:
                    return self._reply(patient, [OutMessage(note[0])])
                _, _, state, ctx = loaded
                return self._reply(patient, self.engine.ask(state, ctx, note), seq=state.seq)
            await self.repo.erase_patient(patient.id, self.clock.now())
            log.info("patient %s erased their data", patient.id)
            return Reply(
                chat_id=patient.telegram_chat_id or 0, messages=[OutMessage(self.catalog.t("erase_done"))]
            )

    async def delivered(self, patient_id: int, seq: int) -> None:
        """The channel delivered everything up to question ``seq``."""
        await self.repo.mark_prompted(patient_id, seq)

    async def pending_prompts(self) -> list[Reply]:
        """After a restart: questions that were committed but maybe never shown."""
        replies = []
        for conv in await self.repo.unprompted_conversations():
            patient = await self.repo.get_patient(conv.patient_id)
            consult = await self.repo.get_consult(conv.consult_id)
            if patient is None or consult is None:
                continue
            state = IntakeState.from_dict(conv.state)
            messages = self.engine.ask(state, await self.context(consult))
            replies.append(self._reply(patient, messages, seq=state.seq))
        return replies
