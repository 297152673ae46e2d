"""Retention: the moments the rule weighs per patient, the POH's holds, and the daily run's state.

Which moments count and what follows from them is decided in ``bot.services.retention``; this
only reads them, each through an index (consults_patient, plans.patient_id, goals_plan,
actions_goal, reminders_patient), so a page of a practice with many reminders stays quick.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bot.clock import from_iso, iso
from bot.storage.base import SqliteRepository, dt_or_none
from bot.storage.models import RetentionFacts, RetentionHold, RetentionState

_GOALS = "SELECT g.id FROM goals g JOIN plans pl ON pl.id = g.plan_id WHERE pl.patient_id = pt.id"
_FACTS = f"""
SELECT pt.id, pt.practice_id, pt.created_at,
  (SELECT c.id FROM consults c WHERE c.patient_id = pt.id
    ORDER BY c.scheduled_at DESC, c.id DESC LIMIT 1) AS consult_id,
  (SELECT MAX(c.scheduled_at) FROM consults c WHERE c.patient_id = pt.id) AS last_consult_at,
  (SELECT MAX(c.completed_at) FROM consults c WHERE c.patient_id = pt.id) AS last_completed_at,
  (SELECT MAX(COALESCE(g.ended_at, g.created_at)) FROM goals g JOIN plans pl ON pl.id = g.plan_id
    WHERE pl.patient_id = pt.id) AS last_goal_at,
  (SELECT MAX(COALESCE(a.ended_at, a.created_at)) FROM actions a
    WHERE a.goal_id IN ({_GOALS})) AS last_action_at,
  (SELECT MAX(r.answered_at) FROM reminders r WHERE r.patient_id = pt.id) AS last_answer_at,
  EXISTS (SELECT 1 FROM goals g JOIN plans pl ON pl.id = g.plan_id
    WHERE pl.patient_id = pt.id AND g.ended_at IS NULL)
  OR EXISTS (SELECT 1 FROM actions a WHERE a.goal_id IN ({_GOALS})
    AND a.ended_at IS NULL AND a.next_due_at IS NOT NULL) AS plan_running,
  (SELECT MAX(h.until) FROM retention_holds h WHERE h.patient_id = pt.id) AS kept_until
FROM patients pt
WHERE pt.status != 'erased'
"""


class RetentionRepository(SqliteRepository):
    async def facts(
        self, *, practice_id: int | None = None, patient_id: int | None = None
    ) -> list[RetentionFacts]:
        """Every patient not erased (of one practice, or one patient), in id order."""
        sql, params = _FACTS, []
        if practice_id is not None:
            sql += " AND pt.practice_id = ?"
            params.append(practice_id)
        if patient_id is not None:
            sql += " AND pt.id = ?"
            params.append(patient_id)
        rows = await self.db.fetchall(sql + " ORDER BY pt.id", tuple(params))
        return [_facts(r) for r in rows]

    async def add_hold(
        self,
        patient_id: int,
        until: date,
        reason: str,
        account_id: int | None,
        user_name: str,
        now: datetime,
    ) -> int:
        return await self.db.execute(
            "INSERT INTO retention_holds (patient_id, until, reason, account_id, user_name, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (patient_id, until.isoformat(), reason, account_id, user_name, iso(now)),
        )

    async def holds(self, practice_id: int, from_day: date) -> list[RetentionHold]:
        """Per patient of the practice (not erased) the hold that runs longest, if it runs to
        ``from_day`` or later; the longest first."""
        rows = await self.db.fetchall(
            "SELECT h.*, (SELECT c.id FROM consults c WHERE c.patient_id = h.patient_id "
            "ORDER BY c.scheduled_at DESC, c.id DESC LIMIT 1) AS consult_id "
            "FROM retention_holds h JOIN patients pt ON pt.id = h.patient_id "
            "WHERE pt.practice_id = ? AND pt.status != 'erased' AND h.until >= ? "
            "AND h.id = (SELECT h2.id FROM retention_holds h2 WHERE h2.patient_id = h.patient_id "
            "ORDER BY h2.until DESC, h2.id DESC LIMIT 1) ORDER BY h.until DESC, h.id",
            (practice_id, from_day.isoformat()),
        )
        return [
            RetentionHold(
                r["patient_id"],
                r["consult_id"],
                date.fromisoformat(r["until"]),
                r["reason"],
                r["user_name"],
                from_iso(r["created_at"]),
            )
            for r in rows
        ]

    async def state(self) -> RetentionState | None:
        row = await self.db.fetchone("SELECT last_day, months, since FROM retention_state WHERE id = 1")
        if row is None:
            return None
        return RetentionState(
            date.fromisoformat(row["last_day"]), int(row["months"]), date.fromisoformat(row["since"])
        )

    async def claim_day(self, day: date, months: int, since: date) -> bool:
        """Record the run of ``day``; False when that day (or a later one) ran already, so two
        ticks (or two processes) never run one day twice."""
        changed = await self.db.execute_rowcount(
            "INSERT INTO retention_state (id, last_day, months, since) VALUES (1, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET last_day = excluded.last_day, months = excluded.months, "
            "since = excluded.since WHERE retention_state.last_day < excluded.last_day",
            (day.isoformat(), months, since.isoformat()),
        )
        return changed == 1


def _facts(row: Any) -> RetentionFacts:
    plan_changes = [m for m in (row["last_goal_at"], row["last_action_at"]) if m]
    return RetentionFacts(
        patient_id=row["id"],
        practice_id=row["practice_id"],
        consult_id=row["consult_id"],
        created_at=from_iso(row["created_at"]),
        last_consult_at=dt_or_none(row["last_consult_at"]),
        last_completed_at=dt_or_none(row["last_completed_at"]),
        last_plan_change_at=from_iso(max(plan_changes)) if plan_changes else None,
        last_answer_at=dt_or_none(row["last_answer_at"]),
        plan_running=bool(row["plan_running"]),
        kept_until=date.fromisoformat(row["kept_until"]) if row["kept_until"] else None,
    )
