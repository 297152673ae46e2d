"""Care plan storage (plans, goals, actions). SQL for plans lives here and nowhere else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.clock import iso
from bot.storage.base import SqliteRepository


class PlanRepository(SqliteRepository):
    async def plan_id(self, patient_id: int) -> int | None:
        row = await self.db.fetchone("SELECT id FROM plans WHERE patient_id = ?", (patient_id,))
        return int(row["id"]) if row else None

    async def add_plan(self, patient_id: int, now: datetime) -> int:
        return await self.db.execute(
            "INSERT INTO plans (patient_id, created_at) VALUES (?, ?)", (patient_id, iso(now))
        )

    async def add_goal(
        self,
        plan_id: int,
        text: str,
        follow_up_on: str | None,
        author: str,
        now: datetime,
        teachback: str | None,
        next_review_at: datetime,
    ) -> int:
        return await self.db.execute(
            "INSERT INTO goals (plan_id, text, follow_up_on, author, created_at, teachback, next_review_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (plan_id, text, follow_up_on, author, iso(now), teachback, iso(next_review_at)),
        )

    async def practice_of_goal(self, goal_id: int) -> int | None:
        row = await self.db.fetchone(
            "SELECT pa.practice_id FROM goals g JOIN plans p ON p.id = g.plan_id "
            "JOIN patients pa ON pa.id = p.patient_id WHERE g.id = ? AND g.ended_at IS NULL",
            (goal_id,),
        )
        return int(row[0]) if row else None

    async def goal(self, goal_id: int) -> Any:
        return await self.db.fetchone("SELECT * FROM goals WHERE id = ?", (goal_id,))

    async def add_action(
        self,
        goal_id: int,
        what: str,
        schedule_json: str,
        measurement: str | None,
        author: str,
        now: datetime,
        replaces: int | None,
        next_due_at: datetime | None,
        limits_json: str | None = None,
    ) -> int:
        return await self.db.execute(
            "INSERT INTO actions (goal_id, what, schedule_json, measurement, author, created_at, replaces, "
            "next_due_at, limits_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                goal_id,
                what,
                schedule_json,
                measurement,
                author,
                iso(now),
                replaces,
                iso(next_due_at) if next_due_at else None,
                limits_json,
            ),
        )

    async def active_action(self, action_id: int) -> Any:
        return await self.db.fetchone("SELECT * FROM actions WHERE id = ? AND ended_at IS NULL", (action_id,))

    async def end_action(self, action_id: int, now: datetime) -> bool:
        count = await self.db.execute_rowcount(
            "UPDATE actions SET ended_at = ?, next_due_at = NULL WHERE id = ? AND ended_at IS NULL",
            (iso(now), action_id),
        )
        return count == 1

    async def end_goal(self, goal_id: int, now: datetime) -> bool:
        async with self.db.transaction():
            count = await self.db.execute_rowcount(
                "UPDATE goals SET ended_at = ?, next_review_at = NULL WHERE id = ? AND ended_at IS NULL",
                (iso(now), goal_id),
            )
            await self.db.execute(
                "UPDATE actions SET ended_at = ?, next_due_at = NULL WHERE goal_id = ? AND ended_at IS NULL",
                (iso(now), goal_id),
            )
        return count == 1

    async def goals(self, patient_id: int) -> list[Any]:
        return await self.db.fetchall(
            "SELECT g.* FROM goals g JOIN plans p ON p.id = g.plan_id WHERE p.patient_id = ? ORDER BY g.id",
            (patient_id,),
        )

    async def actions(self, goal_id: int) -> list[Any]:
        return await self.db.fetchall("SELECT * FROM actions WHERE goal_id = ? ORDER BY id", (goal_id,))

    async def due_actions(self, until: datetime, limit: int) -> list[int]:
        """Active actions due at or before ``until``: a range scan on the partial index."""
        rows = await self.db.fetchall(
            "SELECT id FROM actions WHERE ended_at IS NULL AND next_due_at IS NOT NULL AND next_due_at <= ? "
            "ORDER BY next_due_at LIMIT ?",
            (iso(until), limit),
        )
        return [int(r["id"]) for r in rows]
