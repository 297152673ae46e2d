"""The individual care plan (IZP): plan -> goal -> action, with history.

A change never rewrites the past: the old goal or action is ended and a new row replaces it.
Each active action keeps its next due moment (UTC), computed from its schedule in the patient's
time zone with quiet hours; finding due reminders uses an index on it.
The same service serves the CLI now, and the Telegram plan flow and web editor later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import Clock, from_iso
from bot.storage.plans import PlanRepository
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
    def __init__(
        self, repo: PlanRepository, clock: Clock, zone: ZoneInfo, quiet: QuietHours | None = None
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.zone = zone
        self.quiet = quiet or QuietHours()

    async def _plan_id(self, patient_id: int) -> int:
        plan_id = await self.repo.plan_id(patient_id)
        if plan_id is not None:
            return plan_id
        if await self.repo.patient_status(patient_id) in (None, "erased"):
            raise PlanError(f"no patient with id {patient_id}")
        return await self.repo.add_plan(patient_id, self.clock.now())

    async def add_goal(
        self, patient_id: int, text: str, author: str, follow_up_on: date | None = None
    ) -> int:
        if not text.strip():
            raise PlanError("a goal needs words")
        async with self.repo.transaction():
            plan_id = await self._plan_id(patient_id)
            follow = follow_up_on.isoformat() if follow_up_on else None
            return await self.repo.add_goal(plan_id, text.strip(), follow, author, self.clock.now())

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
        goal = await self.repo.goal(goal_id)
        if goal is None or goal["ended_at"] is not None:
            raise PlanError(f"no active goal with id {goal_id}")
        now = self.clock.now()
        due = next_due(schedule, now, self.zone, self.quiet)
        return await self.repo.add_action(
            goal_id, what.strip(), json.dumps(schedule.to_dict()), measurement, author, now, replaces, due
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
        async with self.repo.transaction():
            old = await self.repo.active_action(action_id)
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
        if not await self.repo.end_action(action_id, self.clock.now()):
            raise PlanError(f"no active action with id {action_id}")

    async def end_goal(self, goal_id: int) -> None:
        if not await self.repo.end_goal(goal_id, self.clock.now()):
            raise PlanError(f"no active goal with id {goal_id}")

    async def goals(self, patient_id: int, *, with_history: bool = False) -> list[GoalView]:
        out = []
        for g in await self.repo.goals(patient_id):
            if g["ended_at"] and not with_history:
                continue
            follow = date.fromisoformat(g["follow_up_on"]) if g["follow_up_on"] else None
            view = GoalView(g["id"], g["text"], follow, ended=bool(g["ended_at"]), replaces=g["replaces"])
            for a in await self.repo.actions(g["id"]):
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

    async def due_actions(self, until: datetime, limit: int = 1000) -> list[int]:
        """Ids of active actions due at or before ``until`` (an index range scan)."""
        return await self.repo.due_actions(until, limit)
