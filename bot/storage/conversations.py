"""Conversation state and the updates already applied. SQL for them lives here and nowhere else."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.clock import iso
from bot.storage import identity
from bot.storage.base import SqliteRepository
from bot.storage.models import Conversation


class ConversationRepository(SqliteRepository):
    """Each patient's place in a flow (state as JSON, a sequence number per question)."""

    async def get(self, patient_id: int) -> Conversation | None:
        row = await self.db.fetchone("SELECT * FROM conversations WHERE patient_id = ?", (patient_id,))
        return _conversation(row) if row else None

    async def save(
        self,
        patient_id: int,
        consult_id: int,
        flow: str,
        state: dict[str, Any],
        now: datetime,
        *,
        paused: bool = False,
    ) -> None:
        await self.db.execute_later(
            "INSERT INTO conversations (patient_id, consult_id, flow, state_json, seq, paused, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(patient_id) DO UPDATE SET "
            "consult_id = excluded.consult_id, flow = excluded.flow, state_json = excluded.state_json, "
            "seq = excluded.seq, paused = excluded.paused, updated_at = excluded.updated_at",
            (
                patient_id,
                consult_id,
                flow,
                json.dumps(state, ensure_ascii=False),
                int(state.get("seq", 0)),
                int(paused),
                iso(now),
            ),
        )

    async def set_paused(self, patient_id: int, paused: bool) -> None:
        await self.db.execute_later(
            "UPDATE conversations SET paused = ? WHERE patient_id = ?", (int(paused), patient_id)
        )

    async def mark_prompted(self, patient_id: int, seq: int) -> None:
        await self.db.execute_later(
            "UPDATE conversations SET prompted_seq = MAX(prompted_seq, ?) WHERE patient_id = ?",
            (seq, patient_id),
        )

    async def unprompted(self) -> list[Conversation]:
        """Conversations whose current question may never have reached the patient."""
        rows = await self.db.fetchall(
            "SELECT c.* FROM conversations c JOIN patients p ON p.id = c.patient_id "
            "WHERE c.prompted_seq < c.seq AND c.paused = 0 AND p.status = 'active'"
        )
        return [_conversation(r) for r in rows]


class UpdateRepository(SqliteRepository):
    """Telegram updates already applied (exactly once, with their inbox rows)."""

    async def is_processed(self, update_id: int) -> bool:
        row = await self.db.fetchone("SELECT 1 FROM processed_updates WHERE update_id = ?", (update_id,))
        return row is not None

    async def mark_processed(self, update_id: int, now: datetime) -> None:
        """The update is applied; in the caller's transaction (the one that records the answer).
        Its inbox row is handled too, and its content forgotten. Once per update: a second call in
        the same update (the guard's, after the service's) costs nothing."""
        if identity.lookup(("processed", update_id))[0]:
            return
        identity.remember(("processed", update_id), True)  # a rollback forgets it again
        async with self.db.transaction():
            await self.db.execute_later(
                "INSERT OR IGNORE INTO processed_updates (update_id, processed_at) VALUES (?, ?)",
                (update_id, iso(now)),
            )
            await self.db.execute_later(
                "UPDATE inbox SET status = 'handled', payload_json = '{}', handled_at = ? "
                "WHERE update_id = ? AND status = 'pending'",
                (iso(now), update_id),
            )


def _conversation(row: Any) -> Conversation:
    return Conversation(
        row["patient_id"],
        row["consult_id"],
        row["flow"],
        json.loads(row["state_json"]),
        row["seq"],
        row["prompted_seq"],
        bool(row["paused"]),
    )
