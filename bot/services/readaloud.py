"""Reading aloud: every message to a patient who chose it also comes as a voice note.

The text always stays (the voice note is never the only carrier). Answer buttons are read out
too, except number scales. Synthesis problems never block a message: the text goes anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.callbacks import ReplayTap
from bot.content import Catalog
from bot.flows.model import Button, OutMessage
from bot.storage.ports import UnitOfWork
from bot.voice.tts import SynthesisError, VoiceCache

log = logging.getLogger(__name__)

REPLAY = ReplayTap().pack()


class ReadAloud:
    def __init__(self, repo: UnitOfWork, catalog: Catalog, cache: VoiceCache | None) -> None:
        self.repo = repo
        self.catalog = catalog
        self.cache = cache

    def spoken(self, message: OutMessage) -> str:
        """The text as read aloud: the message, then its answer buttons in words."""
        labels = [b.label for row in message.buttons for b in row if not b.label.strip().isdigit()]
        if not labels:
            return message.text
        return f"{message.text}\n{self.catalog.t('voice.choices', options='; '.join(labels))}"

    async def attach(self, patient_id: int | None, messages: Sequence[OutMessage]) -> list[OutMessage]:
        """``messages`` with a voice note after each one that should be read aloud."""
        out = list(messages)
        if self.cache is None or patient_id is None or not messages:
            return out
        patient = await self.repo.patients.get(patient_id)
        on = bool(patient and patient.read_aloud)
        result: list[OutMessage] = []
        for message in out:
            result.append(message)
            if message.voice is not None or message.edit or not message.text or not (on or message.speak):
                continue
            try:
                audio = await self.cache.audio(self.spoken(message), private=message.private)
            except (SynthesisError, OSError) as exc:
                log.warning("read aloud failed: %s", type(exc).__name__)
                continue
            replay = ((Button(self.catalog.t("voice.replay"), REPLAY),),)
            result.append(OutMessage("", replay, voice=audio))
        return result
