"""The durable outbox: what the bot sends on its own, marked sent only after Telegram accepted it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.clock import from_iso, iso
from bot.storage.base import SqliteRepository
from bot.storage.models import OutboxItem, Patient


class OutboxRepository(SqliteRepository):
    """Outbox rows: safety alerts first, a 400 fails a row, a 429 or 5xx retries it."""

    async def enqueue(
        self,
        kind: str,
        chat_id: int,
        payload: dict[str, Any],
        due_at: datetime,
        now: datetime,
        *,
        patient_id: int | None = None,
        consult_id: int | None = None,
    ) -> int:
        return await self.db.execute(
            "INSERT INTO outbox (kind, chat_id, payload_json, due_at, created_at, patient_id, "
            "consult_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                kind,
                chat_id,
                json.dumps(payload, ensure_ascii=False),
                iso(due_at),
                iso(now),
                patient_id,
                consult_id,
            ),
        )

    async def enqueue_plan_start(
        self, patient: Patient, consult_id: int, due_at: datetime, now: datetime
    ) -> int:
        """Ask the patient to make their own plan (the ``plan_start`` renderer decides at send time)."""
        return await self.enqueue(
            "plan_start",
            patient.telegram_chat_id or 0,
            {"consult_id": consult_id},
            due_at,
            now,
            patient_id=patient.id,
            consult_id=consult_id,
        )

    async def due(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        rows = await self.db.fetchall(
            # Safety alerts first, then what the practice needs, then patients' reminders.
            "SELECT * FROM outbox WHERE status = 'pending' AND due_at <= ? ORDER BY "
            "CASE kind WHEN 'alert' THEN 0 WHEN 'rejected' THEN 1 WHEN 'blocked' THEN 1 WHEN 'signal' THEN 1 "
            "WHEN 'agenda' THEN 2 ELSE 3 END, due_at, id LIMIT ?",
            (iso(now), limit),
        )
        return [
            OutboxItem(
                r["id"],
                r["kind"],
                r["chat_id"],
                json.loads(r["payload_json"]),
                from_iso(r["due_at"]),
                r["attempts"],
                r["patient_id"],
                r["consult_id"],
            )
            for r in rows
        ]

    async def sent(self, item_id: int, message_id: int | None, now: datetime) -> None:
        await self.db.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, telegram_message_id = ?, "
            "attempts = attempts + 1 WHERE id = ?",
            (iso(now), message_id, item_id),
        )

    async def retry(self, item_id: int, due_at: datetime, *, give_up: bool) -> None:
        await self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, due_at = ?, status = ? WHERE id = ?",
            (iso(due_at), "failed" if give_up else "pending", item_id),
        )

    async def parts_sent(self, item_id: int, parts: int) -> None:
        """A multi-part row: the first ``parts`` messages went out."""
        await self.db.execute(
            "UPDATE outbox SET payload_json = json_set(payload_json, '$._parts_sent', ?) WHERE id = ?",
            (parts, item_id),
        )

    async def cancel(self, item_id: int) -> None:
        await self.db.execute("UPDATE outbox SET status = 'cancelled' WHERE id = ?", (item_id,))

    async def rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, kind, chat_id, status, attempts, consult_id, payload_json FROM outbox"
        rows = await (self.db.fetchall(sql + " WHERE kind = ?", (kind,)) if kind else self.db.fetchall(sql))
        return [{**dict(r), "payload": json.loads(r["payload_json"])} for r in rows]
