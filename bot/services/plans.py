"""The individual care plan (IZP): plan -> goal -> action, with history.

A change never rewrites the past: the old goal or action is ended and a new row replaces it.
Each active action keeps its next due moment (UTC), computed from its schedule in the patient's
time zone with quiet hours; finding due reminders uses an index on it.
The same service serves the CLI now, and the Telegram plan flow and web editor later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import Clock, from_iso
from bot.content import Catalog
from bot.services.schedule_input import read_schedule
from bot.storage.models import PatientStatus
from bot.storage.ports import UnitOfWork
from scheduler.schedules import QuietHours, Schedule, next_due, respect_quiet, to_utc

MEASUREMENTS = ("blood_pressure", "weight", "steps", "pain", "glucose")
# How long a plan made in the chat runs (the answer to "Hoe lang?"); None is open-ended.
DURATIONS: dict[str, int | None] = {"2w": 14, "4w": 28, "3m": 91, "open": None}
FOLLOW_UP_DAYS = 28
REVIEW_EVERY = timedelta(days=7)
REVIEW_AT = time(18, 30)  # the weekly look back arrives at this local time


def schedule_from_answers(answers: dict[str, Any], today: date, now_local: time) -> Schedule:
    """The schedule a patient chose in the plan flow (``content/nl/plan.yaml``)."""
    often = str(answers["often"])
    kind, every = ("every_n_days", "2") if often == "every_2_days" else (often, None)
    return read_schedule(
        kind,
        str(answers["time"]),
        today=today,
        now=now_local,
        weekday_names=(),
        days=[str(d) for d in answers.get("days") or []],
        every=every,
        lasting_days=DURATIONS.get(str(answers.get("until") or "open")),
    )


# A goal or action is said back to the patient and sent in reminders: one or two short sentences.
MAX_PLAN_TEXT = 300


class PlanError(ValueError):
    pass


def describe_schedule(catalog: Catalog, schedule: Schedule) -> str:
    """``elke dag om 08:00, tot en met 6 december`` in B1 Dutch."""
    t = catalog.t
    at = schedule.at.strftime("%H:%M")
    if schedule.kind == "once":
        day = schedule.start
        text = t("schedule.once", day=day.day, month=catalog.raw("months")[day.month - 1], time=at)
    elif schedule.kind == "weekdays":
        names = [catalog.raw("weekdays")[d] for d in sorted(schedule.weekdays)]
        days = names[0] if len(names) == 1 else t("schedule.and", first=", ".join(names[:-1]), last=names[-1])
        text = t("schedule.weekdays", days=days, time=at)
    elif schedule.kind == "every_n_days" and schedule.every_days > 1:
        text = t("schedule.every_n_days", n=schedule.every_days, time=at)
    else:
        text = t("schedule.daily", time=at)
    if schedule.end and schedule.kind != "once":
        end = schedule.end
        text += t("schedule.until", day=end.day, month=catalog.raw("months")[end.month - 1])
    return text


@dataclass
class ActionView:
    id: int
    what: str
    schedule: Schedule
    measurement: str | None
    next_due_at: Any
    ended: bool = False
    replaces: int | None = None
    limits: dict[str, list[float]] | None = None  # this patient's signal limits for the measurement


@dataclass
class GoalView:
    id: int
    text: str
    follow_up_on: date | None
    actions: list[ActionView] = field(default_factory=list)
    teachback: str | None = None
    ended: bool = False
    replaces: int | None = None


class PlanService:
    def __init__(
        self, repo: UnitOfWork, clock: Clock, zone: ZoneInfo, quiet: QuietHours | None = None
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.zone = zone
        self.quiet = quiet or QuietHours()

    async def _plan_id(self, patient_id: int) -> int:
        plan_id = await self.repo.plans.plan_id(patient_id)
        if plan_id is not None:
            return plan_id
        patient = await self.repo.patients.get(patient_id)
        if patient is None or patient.status == PatientStatus.ERASED:
            raise PlanError(f"no patient with id {patient_id}")
        return await self.repo.plans.add_plan(patient_id, self.clock.now())

    async def add_goal(
        self,
        patient_id: int,
        text: str,
        author: str,
        follow_up_on: date | None = None,
        *,
        teachback: str | None = None,
    ) -> int:
        if not text.strip():
            raise PlanError("a goal needs words")
        if len(text.strip()) > MAX_PLAN_TEXT:
            raise PlanError(f"a goal is at most {MAX_PLAN_TEXT} characters")
        async with self.repo.transaction():
            plan_id = await self._plan_id(patient_id)
            follow = follow_up_on.isoformat() if follow_up_on else None
            now = self.clock.now()
            local = now.astimezone(self.zone)
            review = respect_quiet(
                to_utc(local.date() + REVIEW_EVERY, REVIEW_AT, self.zone), self.zone, self.quiet
            )
            return await self.repo.plans.add_goal(
                plan_id, text.strip(), follow, author, now, teachback, review
            )

    async def add_from_chat(self, patient_id: int, answers: dict[str, Any]) -> tuple[int, int]:
        """The plan the patient made in the chat: one goal (with their teach-back) and one action."""
        local = self.clock.now().astimezone(self.zone)
        schedule = schedule_from_answers(answers, local.date(), local.time())
        follow = schedule.end or local.date() + timedelta(days=FOLLOW_UP_DAYS)
        measure = answers.get("measure")
        async with self.repo.transaction():
            goal = await self.add_goal(
                patient_id, str(answers["goal"]), "patient", follow, teachback=answers.get("teachback")
            )
            action = await self.add_action(
                goal,
                str(answers["action"]),
                schedule,
                "patient",
                measure if measure in MEASUREMENTS else None,
            )
        return goal, action

    async def add_action(
        self,
        goal_id: int,
        what: str,
        schedule: Schedule,
        author: str,
        measurement: str | None = None,
        *,
        replaces: int | None = None,
        limits: dict[str, list[float]] | None = None,
    ) -> int:
        if not what.strip():
            raise PlanError("an action needs words")
        if len(what.strip()) > MAX_PLAN_TEXT:
            raise PlanError(f"an action is at most {MAX_PLAN_TEXT} characters")
        if measurement is not None and measurement not in MEASUREMENTS:
            raise PlanError(f"unknown measurement {measurement!r}; choose from {', '.join(MEASUREMENTS)}")
        goal = await self.repo.plans.goal(goal_id)
        if goal is None or goal["ended_at"] is not None:
            raise PlanError(f"no active goal with id {goal_id}")
        if limits and measurement is None:
            raise PlanError("limits need a measurement")
        now = self.clock.now()
        due = next_due(schedule, now, self.zone, self.quiet)
        return await self.repo.plans.add_action(
            goal_id,
            what.strip(),
            json.dumps(schedule.to_dict()),
            measurement,
            author,
            now,
            replaces,
            due,
            json.dumps(limits) if limits else None,
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
            old = await self.repo.plans.active_action(action_id)
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
                limits=json.loads(old["limits_json"]) if old["limits_json"] else None,
            )

    async def end_action(self, action_id: int) -> None:
        if not await self.repo.plans.end_action(action_id, self.clock.now()):
            raise PlanError(f"no active action with id {action_id}")

    async def end_goal(self, goal_id: int) -> None:
        if not await self.repo.plans.end_goal(goal_id, self.clock.now()):
            raise PlanError(f"no active goal with id {goal_id}")

    async def goals(self, patient_id: int, *, with_history: bool = False) -> list[GoalView]:
        out = []
        for g in await self.repo.plans.goals(patient_id):
            if g["ended_at"] and not with_history:
                continue
            follow = date.fromisoformat(g["follow_up_on"]) if g["follow_up_on"] else None
            view = GoalView(
                g["id"],
                g["text"],
                follow,
                teachback=g["teachback"],
                ended=bool(g["ended_at"]),
                replaces=g["replaces"],
            )
            for a in await self.repo.plans.actions(g["id"]):
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
                        json.loads(a["limits_json"]) if a["limits_json"] else None,
                    )
                )
            out.append(view)
        return out

    async def goal_in_practice(self, goal_id: int, practice_id: int) -> int | None:
        """The goal's id when it is active and belongs to a patient of this practice."""
        return goal_id if await self.repo.plans.practice_of_goal(goal_id) == practice_id else None

    async def action_in_practice(self, action_id: int, practice_id: int) -> bool:
        row = await self.repo.plans.active_action(action_id)
        return row is not None and await self.repo.plans.practice_of_goal(int(row["goal_id"])) == practice_id

    async def has_goal_since(self, patient_id: int, since: datetime) -> bool:
        return any(from_iso(g["created_at"]) >= since for g in await self.repo.plans.goals(patient_id))

    async def due_actions(self, until: datetime, limit: int = 1000) -> list[int]:
        """Ids of active actions due at or before ``until`` (an index range scan)."""
        return await self.repo.plans.due_actions(until, limit)
