"""The individual care plan (IZP): plan -> goal -> action, with history.

A change never rewrites the past: the old goal or action is ended and a new row replaces it.
Each active action keeps its next due moment (UTC), computed from its schedule in the patient's
time zone with quiet hours; finding due reminders uses an index on it.
The same service serves the CLI now, and the Telegram plan flow and web editor later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import Clock, from_iso, iso
from bot.storage.db import Database
from scheduler.schedules import QuietHours, Schedule, next_due

MEASUREMENTS = ("blood_pressure", "weight", "steps", "pain", "glucose")


class PlanError(ValueError):
    pass


@dataclass
class ActionView:
    id: int
    what: str
    schedule: Schedule
    measurement: str | None
    next_due_at: Any
    ended: bool = False
    replaces: int | None = None


@dataclass
class GoalView:
    id: int
    text: str
    follow_up_on: date | None
    actions: list[ActionView] = field(default_factory=list)
    ended: bool = False
    replaces: int | None = None


class PlanService:
    def __init__(self, db: Database, clock: Clock, zone: ZoneInfo, quiet: QuietHours | None = None) -> None:
        self.db = db
        self.clock = clock
        self.zone = zone
        self.quiet = quiet or QuietHours()

    async def _plan_id(self, patient_id: int) -> int:
        row = await self.db.fetchone("SELECT id FROM plans WHERE patient_id = ?", (patient_id,))
        if row:
            return int(row["id"])
        patient = await self.db.fetchone("SELECT status FROM patients WHERE id = ?", (patient_id,))
        if patient is None or patient["status"] == "erased":
            raise PlanError(f"no patient with id {patient_id}")
        return await self.db.execute(
            "INSERT INTO plans (patient_id, created_at) VALUES (?, ?)", (patient_id, iso(self.clock.now()))
        )

    async def add_goal(
        self, patient_id: int, text: str, author: str, follow_up_on: date | None = None
    ) -> int:
        if not text.strip():
            raise PlanError("a goal needs words")
        async with self.db.transaction():
            plan_id = await self._plan_id(patient_id)
            return await self.db.execute(
                "INSERT INTO goals (plan_id, text, follow_up_on, author, created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    plan_id,
                    text.strip(),
                    follow_up_on.isoformat() if follow_up_on else None,
                    author,
                    iso(self.clock.now()),
                ),
            )

    async def add_action(
        self,
        goal_id: int,
        what: str,
        schedule: Schedule,
        author: str,
        measurement: str | None = None,
        *,
        replaces: int | None = None,
    ) -> int:
        if not what.strip():
            raise PlanError("an action needs words")
        if measurement is not None and measurement not in MEASUREMENTS:
            raise PlanError(f"unknown measurement {measurement!r}; choose from {', '.join(MEASUREMENTS)}")
        goal = await self.db.fetchone("SELECT ended_at FROM goals WHERE id = ?", (goal_id,))
        if goal is None or goal["ended_at"] is not None:
            raise PlanError(f"no active goal with id {goal_id}")
        now = self.clock.now()
        due = next_due(schedule, now, self.zone, self.quiet)
        return await self.db.execute(
            "INSERT INTO actions (goal_id, what, schedule_json, measurement, author, created_at, replaces, "
            "next_due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                goal_id,
                what.strip(),
                json.dumps(schedule.to_dict()),
                measurement,
                author,
                iso(now),
                replaces,
                iso(due) if due else None,
            ),
        )

    async def change_action(
        self,
        action_id: int,
        author: str,
        *,
        what: str | None = None,
        schedule: Schedule | None = None,
        measurement: str | None = None,
    ) -> int:
        """End the action and add its successor; returns the new action's id."""
        async with self.db.transaction():
            old = await self.db.fetchone(
                "SELECT * FROM actions WHERE id = ? AND ended_at IS NULL", (action_id,)
            )
            if old is None:
                raise PlanError(f"no active action with id {action_id}")
            await self.end_action(action_id)
            return await self.add_action(
                old["goal_id"],
                what or old["what"],
                schedule or Schedule.from_dict(json.loads(old["schedule_json"])),
                author,
                measurement if measurement is not None else old["measurement"],
                replaces=action_id,
            )

    async def end_action(self, action_id: int) -> None:
        count = await self.db.execute_rowcount(
            "UPDATE actions SET ended_at = ?, next_due_at = NULL WHERE id = ? AND ended_at IS NULL",
            (iso(self.clock.now()), action_id),
        )
        if count != 1:
            raise PlanError(f"no active action with id {action_id}")

    async def end_goal(self, goal_id: int) -> None:
        async with self.db.transaction():
            count = await self.db.execute_rowcount(
                "UPDATE goals SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
                (iso(self.clock.now()), goal_id),
            )
            if count != 1:
                raise PlanError(f"no active goal with id {goal_id}")
            await self.db.execute(
                "UPDATE actions SET ended_at = ?, next_due_at = NULL WHERE goal_id = ? AND ended_at IS NULL",
                (iso(self.clock.now()), goal_id),
            )

    async def goals(self, patient_id: int, *, with_history: bool = False) -> list[GoalView]:
        rows = await self.db.fetchall(
            "SELECT g.* FROM goals g JOIN plans p ON p.id = g.plan_id WHERE p.patient_id = ? ORDER BY g.id",
            (patient_id,),
        )
        out = []
        for g in rows:
            if g["ended_at"] and not with_history:
                continue
            follow = date.fromisoformat(g["follow_up_on"]) if g["follow_up_on"] else None
            view = GoalView(g["id"], g["text"], follow, ended=bool(g["ended_at"]), replaces=g["replaces"])
            actions = await self.db.fetchall(
                "SELECT * FROM actions WHERE goal_id = ? ORDER BY id", (g["id"],)
            )
            for a in actions:
                if a["ended_at"] and not with_history:
                    continue
                due = from_iso(a["next_due_at"]) if a["next_due_at"] else None
                schedule = Schedule.from_dict(json.loads(a["schedule_json"]))
                view.actions.append(
                    ActionView(
                        a["id"],
                        a["what"],
                        schedule,
                        a["measurement"],
                        due,
                        bool(a["ended_at"]),
                        a["replaces"],
                    )
                )
            out.append(view)
        return out

    async def due_actions(self, until: Any, limit: int = 1000) -> list[int]:
        """Ids of active actions due at or before ``until`` (an index range scan)."""
        rows = await self.db.fetchall(
            "SELECT id FROM actions WHERE ended_at IS NULL AND next_due_at IS NOT NULL AND next_due_at <= ? "
            "ORDER BY next_due_at LIMIT ?",
            (iso(until), limit),
        )
        return [int(r["id"]) for r in rows]
