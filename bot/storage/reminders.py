"""Reminder storage: one row per planned moment, with the patient's answer. SQL lives here."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.clock import from_iso, iso
from bot.storage.base import SqliteRepository
from bot.storage.models import DueAction, Reminder, ReminderStatus

_SELECT = (
    "SELECT r.*, COALESCE(a.what, '') AS what, a.measurement, a.schedule_json, a.limits_json, "
    "g.text AS goal_text "
    "FROM reminders r JOIN goals g ON g.id = r.goal_id LEFT JOIN actions a ON a.id = r.action_id "
)


def reminder_from_row(row: Any) -> Reminder:
    """A reminder row with its goal and action joined (``_SELECT``); the in-memory store uses it too."""
    return Reminder(
        row["id"],
        row["patient_id"],
        row["goal_id"],
        row["action_id"],
        row["kind"],
        from_iso(row["due_at"]),
        ReminderStatus(row["status"]),
        row["later_count"],
        json.loads(row["value_json"]) if row["value_json"] else None,
        row["barrier"],
        row["note"],
        row["awaiting"],
        row["what"],
        row["measurement"],
        row["goal_text"],
        row["schedule_json"],
        json.loads(row["limits_json"]) if row["limits_json"] else None,
    )


class ReminderRepository(SqliteRepository):
    # -- materialising ------------------------------------------------------------------
    async def due_action(self, action_id: int) -> DueAction | None:
        row = await self.db.fetchone(
            "SELECT a.id, a.goal_id, p.patient_id, a.schedule_json, a.next_due_at FROM actions a "
            "JOIN goals g ON g.id = a.goal_id JOIN plans p ON p.id = g.plan_id "
            "WHERE a.id = ? AND a.ended_at IS NULL AND a.next_due_at IS NOT NULL",
            (action_id,),
        )
        if row is None:
            return None
        return DueAction(row[0], row[1], row[2], row[3], from_iso(row[4]))

    async def set_next_due(self, action_id: int, next_due_at: datetime | None) -> None:
        await self.db.execute(
            "UPDATE actions SET next_due_at = ? WHERE id = ?",
            (iso(next_due_at) if next_due_at else None, action_id),
        )

    async def due_reviews(self, until: datetime, limit: int) -> list[tuple[int, int, datetime]]:
        """(goal id, patient id, review moment) of active goals whose weekly look back is due."""
        rows = await self.db.fetchall(
            "SELECT g.id, p.patient_id, g.next_review_at FROM goals g JOIN plans p ON p.id = g.plan_id "
            "WHERE g.ended_at IS NULL AND g.next_review_at IS NOT NULL AND g.next_review_at <= ? "
            "ORDER BY g.next_review_at LIMIT ?",
            (iso(until), limit),
        )
        return [(int(r[0]), int(r[1]), from_iso(r[2])) for r in rows]

    async def set_next_review(self, goal_id: int, moment: datetime) -> None:
        await self.db.execute("UPDATE goals SET next_review_at = ? WHERE id = ?", (iso(moment), goal_id))

    async def add(
        self,
        patient_id: int,
        goal_id: int,
        action_id: int | None,
        kind: str,
        due_at: datetime,
        status: str,
        now: datetime,
    ) -> int | None:
        """A new reminder; None when this action already has one at that moment."""
        async with self.db.transaction():
            count = await self.db.execute_rowcount(
                "INSERT OR IGNORE INTO reminders (patient_id, goal_id, action_id, kind, due_at, status, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (patient_id, goal_id, action_id, kind, iso(due_at), status, iso(now)),
            )
            if count == 0:
                return None
            row = await self.db.fetchone("SELECT last_insert_rowid()")
            return int(row[0]) if row else None

    # -- answers ------------------------------------------------------------------------
    async def get(self, reminder_id: int) -> Reminder | None:
        row = await self.db.fetchone(_SELECT + "WHERE r.id = ?", (reminder_id,))
        return reminder_from_row(row) if row else None

    async def awaiting(self, patient_id: int) -> Reminder | None:
        """The reminder whose typed answer (a value, a few words) the bot is waiting for."""
        row = await self.db.fetchone(
            _SELECT + "WHERE r.patient_id = ? AND r.awaiting IS NOT NULL ORDER BY r.id DESC LIMIT 1",
            (patient_id,),
        )
        return reminder_from_row(row) if row else None

    async def clear_awaiting(self, patient_id: int) -> None:
        await self.db.execute(
            "UPDATE reminders SET awaiting = NULL WHERE patient_id = ? AND awaiting IS NOT NULL",
            (patient_id,),
        )

    async def answer(
        self,
        reminder_id: int,
        now: datetime,
        *,
        status: str | None = None,
        value: Any = None,
        barrier: str | None = None,
        note: str | None = None,
        awaiting: str | None = None,
        later: bool = False,
    ) -> None:
        """Record (part of) an answer. Fields left None keep their value, except ``awaiting``."""
        await self.db.execute(
            "UPDATE reminders SET status = COALESCE(?, status), "
            "value_json = COALESCE(?, value_json), barrier = COALESCE(?, barrier), "
            "note = COALESCE(?, note), awaiting = ?, later_count = later_count + ?, "
            "answered_at = CASE WHEN ? IS NULL THEN answered_at ELSE ? END WHERE id = ?",
            (
                status,
                json.dumps(value) if value is not None else None,
                barrier,
                note,
                awaiting,
                int(later),
                status,
                iso(now),
                reminder_id,
            ),
        )

    async def mark_missed(self, reminder_id: int) -> None:
        await self.db.execute(
            "UPDATE reminders SET status = 'missed' WHERE id = ? AND status IN ('pending', 'later')",
            (reminder_id,),
        )

    # -- history ------------------------------------------------------------------------
    async def recent(self, action_id: int, limit: int) -> list[Reminder]:
        """The latest reminders of an action up to now, newest first."""
        rows = await self.db.fetchall(
            _SELECT + "WHERE r.action_id = ? ORDER BY r.due_at DESC LIMIT ?", (action_id, limit)
        )
        return [reminder_from_row(r) for r in rows]

    async def of_patient(self, patient_id: int, since: datetime, until: datetime) -> list[Reminder]:
        rows = await self.db.fetchall(
            _SELECT + "WHERE r.patient_id = ? AND r.due_at >= ? AND r.due_at <= ? ORDER BY r.due_at",
            (patient_id, iso(since), iso(until)),
        )
        return [reminder_from_row(r) for r in rows]

    async def cancel_pending_outbox(self, patient_id: int) -> None:
        """Nothing more goes to a patient who blocked the bot."""
        await self.db.execute(
            "UPDATE outbox SET status = 'cancelled' WHERE patient_id = ? AND status = 'pending'",
            (patient_id,),
        )
