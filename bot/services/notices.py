"""Telling the practice: the one place where a notice for the POHs is queued.

Every notice (an agenda is ready, a safety alert, a signal from reminders, a patient who blocked
the bot, a message Telegram refused) is one outbox row per recipient: the consult's own POH when
it has one, otherwise every POH of the practice who receives agendas. Rows hold ids and kinds,
never patient words; the kind's renderer (``App.attach_channel``) writes the text at send time,
so a patient erased in between gets nothing sent about them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot.storage.models import OutboxKind
from bot.storage.ports import UnitOfWork

log = logging.getLogger(__name__)

PRACTICE_KINDS = (
    OutboxKind.AGENDA,
    OutboxKind.ALERT,
    OutboxKind.SIGNAL,
    OutboxKind.BLOCKED,
    OutboxKind.REJECTED,
)


class PracticeNotices:
    def __init__(self, repo: UnitOfWork) -> None:
        self.repo = repo

    async def tell(
        self,
        kind: OutboxKind,
        practice_id: int,
        payload: dict[str, Any],
        now: datetime,
        *,
        clinician_id: int | None = None,
        due: datetime | None = None,
        patient_id: int | None = None,
        consult_id: int | None = None,
    ) -> int:
        """Queue the notice for each recipient (in the caller's transaction); returns how many."""
        if kind not in PRACTICE_KINDS:
            raise ValueError(f"{kind} is not a notice for the practice")
        recipients = await self.repo.clinicians.agenda_recipients(practice_id, clinician_id)
        for clinician in recipients:
            await self.repo.outbox.enqueue(
                kind,
                clinician.telegram_chat_id or 0,
                payload,
                due or now,
                now,
                patient_id=patient_id,
                consult_id=consult_id,
            )
        if not recipients:
            log.warning("no POH of practice %s receives %s notices", practice_id, kind)
        return len(recipients)
