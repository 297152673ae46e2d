"""Voice answers: wherever free text is accepted, a voice message is accepted too.

The audio is kept for the POH (erased with /wis like every answer). Without a speech-to-text
backend the answer becomes "spraakbericht (0:23)" and the conversation goes on. With one, the
bot reads back what it understood and only a confirmed transcript is used as the answer, except
when the transcript holds a red flag or risk words: then safety goes first and it is used at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.callbacks import TranscriptTap
from bot.channels import Reply
from bot.clock import Clock
from bot.content import Catalog
from bot.flows.model import Button, OutMessage, Text, Unsupported
from bot.services.patients import PatientService
from bot.services.safety import SafetyService
from bot.storage.models import Patient, VoiceNoteStatus
from bot.storage.ports import UnitOfWork
from bot.voice.stt import SpeechToText
from bot.voice.tts import is_voice_note

log = logging.getLogger(__name__)


def duration_text(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


class VoiceAnswers:
    def __init__(
        self,
        repo: UnitOfWork,
        patients: PatientService,
        safety: SafetyService,
        catalog: Catalog,
        clock: Clock,
        stt: SpeechToText | None,
        max_seconds: int,
    ) -> None:
        self.repo = repo
        self.patients = patients
        self.safety = safety
        self.catalog = catalog
        self.clock = clock
        self.stt = stt
        self.max_seconds = max_seconds

    async def receive(
        self, patient: Patient, duration: int, fetch: Callable[[], Awaitable[bytes]], update_id: int | None
    ) -> Reply:
        if not await self.patients.takes_words(patient):
            # A voice message where a button is expected: say so kindly, show the buttons again.
            return await self.patients.handle(patient, Unsupported("voice"), update_id)
        if duration > self.max_seconds:
            limit = duration_text(self.max_seconds)
            return await self.patients.reask(patient, self.catalog.t("voice.too_long", max=limit))
        try:
            audio = await fetch()
        except Exception as exc:  # a download that fails is a broken message for the patient
            log.warning("voice download failed: %s", type(exc).__name__)
            audio = b""
        if duration <= 0 or not is_voice_note(audio):
            return await self.patients.reask(patient, self.catalog.t("voice.broken"))
        consult = await self.repo.consults.latest(patient.id)
        consult_id = consult.id if consult else None
        now = self.clock.now()
        if self.stt is None:
            note = await self.repo.voice_notes.add(patient.id, consult_id, duration, audio, now)
            log.info("voice answer %s kept (%ss)", note, duration)
            marker = self.catalog.t("voice.marker", duration=duration_text(duration), id=note)
            return await self.patients.handle(patient, Text(marker), update_id)
        transcript = (await self.stt.transcribe(audio)).strip()
        if not transcript:
            return await self.patients.reask(patient, self.catalog.t("voice.not_understood"))
        # Safety first: a red flag is acted on now, without waiting for a confirmation.
        urgent = bool(self.safety.assess(transcript))
        status = VoiceNoteStatus.CONFIRMED if urgent else VoiceNoteStatus.PENDING
        note = await self.repo.voice_notes.add(
            patient.id, consult_id, duration, audio, now, transcript=transcript, status=status
        )
        if urgent:
            return await self.patients.handle(patient, Text(transcript), update_id)
        t = self.catalog.t
        buttons = (
            (Button(t("voice.confirm_yes"), TranscriptTap(note=note, answer="yes").pack()),),
            (Button(t("voice.confirm_no"), TranscriptTap(note=note, answer="no").pack()),),
        )
        heard = OutMessage(t("voice.heard", text=transcript), buttons, private=True)
        return Reply(patient.telegram_chat_id or 0, [heard], patient_id=patient.id)

    async def confirm(self, patient: Patient, tap: TranscriptTap | None, update_id: int | None) -> Reply:
        """The patient's answer to "Ik heb verstaan: ... Klopt dit?"; None is a forged or cut-off tap."""
        note = await self.repo.voice_notes.get(tap.note) if tap is not None else None
        if (
            tap is None
            or note is None
            or note["patient_id"] != patient.id
            or note["status"] != VoiceNoteStatus.PENDING
        ):
            return Reply(patient.telegram_chat_id or 0, [], toast=self.catalog.t("toast.old"))
        if tap.answer == "yes":
            await self.repo.voice_notes.set_status(note["id"], VoiceNoteStatus.CONFIRMED)
            return await self.patients.handle(patient, Text(note["transcript"]), update_id)
        await self.repo.voice_notes.set_status(note["id"], VoiceNoteStatus.REJECTED)
        return await self.patients.reask(patient, self.catalog.t("voice.again"))
