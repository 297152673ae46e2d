"""An in-memory unit of work for service tests: ``MemoryStore`` implements
``bot.storage.ports.UnitOfWork`` over plain dicts, so a business rule is tested in milliseconds,
without SQLite or aiogram (``tests/test_services_memory.py``).

It mirrors what the SQLite repositories hand out: the same row types from ``bot.storage.models``,
``dict`` rows where SQLite gives ``sqlite3.Row`` (plans, goals, actions, voice notes), moments
stored as ISO text where SQLite stores them so (``created_at``, ``next_due_at``), and payloads
through JSON. ``tests/test_services_memory.py`` checks every fake's methods against its Protocol,
as ``tests/test_storage_ports.py`` does for SQLite.

Repositories no service test needs yet (invites, consents, answers, conversations, inbox, web,
health, retention) raise ``NotImplementedError`` when reached: add a fake here when a test needs one.

``transaction()`` snapshots every table and restores them on an exception; an inner block joins
the outer one, and another task waits for it. Unlike SQLite, a write made outside any transaction
by a second task while the first one is open is rolled back with it (tests run one task at a time).
``scope()`` is a no-op: there is no identity map to keep, every read sees the tables as they are.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.clock import from_iso, iso
from bot.storage.models import (
    Clinician,
    Consult,
    ConsultStatus,
    DueAction,
    OutboxItem,
    Patient,
    PatientStatus,
    Practice,
    Reminder,
    ReminderStatus,
    SafetyCheck,
)
from bot.storage.ports import Answers, Consents, Conversations, Health, Inbox, Invites, Retention, WebStore
from bot.storage.reminders import reminder_from_row

if TYPE_CHECKING:
    from bot.storage.ports import UnitOfWork

Row = dict[str, Any]

# The outbox's send order (bot/storage/outbox.py): safety alerts, then the practice's, then the rest.
_PRIORITY = {"alert": 0, "rejected": 1, "blocked": 1, "signal": 1, "agenda": 2}


@dataclass
class Tables:
    """Everything the store holds; ``transaction()`` copies it whole and puts it back on failure."""

    last_id: dict[str, int] = field(default_factory=dict)
    practices: dict[int, Practice] = field(default_factory=dict)
    clinicians: dict[int, Clinician] = field(default_factory=dict)
    patients: dict[int, Patient] = field(default_factory=dict)
    consults: dict[int, Consult] = field(default_factory=dict)
    voice_notes: dict[int, Row] = field(default_factory=dict)
    safety_events: list[Row] = field(default_factory=list)
    safety_checks: dict[int, SafetyCheck] = field(default_factory=dict)
    outbox: dict[int, Row] = field(default_factory=dict)
    processed: dict[int, datetime] = field(default_factory=dict)
    plans: dict[int, Row] = field(default_factory=dict)
    goals: dict[int, Row] = field(default_factory=dict)
    actions: dict[int, Row] = field(default_factory=dict)
    reminders: dict[int, Row] = field(default_factory=dict)

    def new_id(self, table: str) -> int:
        self.last_id[table] = self.last_id.get(table, 0) + 1
        return self.last_id[table]


class _Repository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    @property
    def _t(self) -> Tables:
        return self._store.tables


class MemoryPractices(_Repository):
    async def add(self, name: str, now: datetime) -> int:
        practice_id = self._t.new_id("practices")
        self._t.practices[practice_id] = Practice(practice_id, name)
        return practice_id

    async def get(self, practice_id: int) -> Practice | None:
        return self._t.practices.get(practice_id)

    async def all(self) -> list[Practice]:
        return [self._t.practices[k] for k in sorted(self._t.practices)]


class MemoryClinicians(_Repository):
    async def add(self, practice_id: int, name: str, now: datetime) -> int:
        clinician_id = self._t.new_id("clinicians")
        self._t.clinicians[clinician_id] = Clinician(clinician_id, practice_id, name, None, None, True)
        return clinician_id

    async def get(self, clinician_id: int) -> Clinician | None:
        return self._t.clinicians.get(clinician_id)

    async def by_telegram(self, user_id: int) -> Clinician | None:
        return next(
            (c for c in self._t.clinicians.values() if c.telegram_user_id == user_id and c.active), None
        )

    async def link(self, clinician_id: int, user_id: int, chat_id: int) -> None:
        clinician = self._t.clinicians.get(clinician_id)
        if clinician is not None:
            self._t.clinicians[clinician_id] = replace(
                clinician, telegram_user_id=user_id, telegram_chat_id=chat_id
            )

    async def agenda_recipients(self, practice_id: int, clinician_id: int | None) -> list[Clinician]:
        """The named clinician if linked, otherwise every linked clinician of the practice."""
        linked = [
            c
            for _, c in sorted(self._t.clinicians.items())
            if c.practice_id == practice_id and c.active and c.telegram_chat_id is not None
        ]
        named = [c for c in linked if c.id == clinician_id]
        return named or linked


class MemoryPatients(_Repository):
    async def add(self, practice_id: int, display_name: str | None, now: datetime) -> int:
        patient_id = self._t.new_id("patients")
        self._t.patients[patient_id] = Patient(
            patient_id, practice_id, display_name, None, None, PatientStatus.INVITED
        )
        return patient_id

    async def get(self, patient_id: int, *, fresh: bool = False) -> Patient | None:
        """``fresh``: read SQLite even inside a scope (after waiting for the patient's lock, where
        another task may have changed the row); the map keeps what it read."""
        return self._t.patients.get(patient_id)

    async def by_telegram(self, user_id: int) -> Patient | None:
        return next(
            (
                p
                for p in self._t.patients.values()
                if p.telegram_user_id == user_id and p.status != PatientStatus.ERASED
            ),
            None,
        )

    def _change(self, patient_id: int, **changes: Any) -> bool:
        patient = self._t.patients.get(patient_id)
        if patient is None:
            return False
        self._t.patients[patient_id] = replace(patient, **changes)
        return True

    async def link(self, patient_id: int, user_id: int, chat_id: int) -> None:
        self._change(
            patient_id, telegram_user_id=user_id, telegram_chat_id=chat_id, status=PatientStatus.ACTIVE
        )

    async def set_status(self, patient_id: int, status: str) -> None:
        self._change(patient_id, status=PatientStatus(status))

    async def set_blocked(self, patient_id: int, now: datetime | None) -> bool:
        """Record that the patient blocked the bot (``now``) or wrote again (None); True if changed."""
        patient = self._t.patients.get(patient_id)
        if patient is None or patient.blocked == (now is not None):
            return False
        return self._change(patient_id, blocked=now is not None)

    async def set_preference(self, patient_id: int, name: str, value: bool) -> None:
        if name not in ("read_aloud", "simple_mode"):
            raise ValueError(f"unknown preference {name!r}")
        self._change(patient_id, **{name: value})

    async def set_settings(
        self, patient_id: int, *, discreet: bool, quiet_start: str | None, quiet_end: str | None
    ) -> None:
        self._change(patient_id, discreet=discreet, quiet_start=quiet_start, quiet_end=quiet_end)

    async def erase(self, patient_id: int, now: datetime) -> None:
        """Remove every piece of the patient's data; keep a tombstone the POH can see."""
        t = self._t
        goals = {g for g, row in t.goals.items() if t.plans[row["plan_id"]]["patient_id"] == patient_id}
        t.outbox = {k: r for k, r in t.outbox.items() if r["patient_id"] != patient_id}
        t.safety_events = [e for e in t.safety_events if e["patient_id"] != patient_id]
        t.safety_checks = {k: c for k, c in t.safety_checks.items() if c.patient_id != patient_id}
        t.reminders = {k: r for k, r in t.reminders.items() if r["patient_id"] != patient_id}
        t.voice_notes = {k: n for k, n in t.voice_notes.items() if n["patient_id"] != patient_id}
        t.actions = {k: a for k, a in t.actions.items() if a["goal_id"] not in goals}
        t.goals = {k: g for k, g in t.goals.items() if k not in goals}
        t.plans = {k: p for k, p in t.plans.items() if p["patient_id"] != patient_id}
        for consult in [c for c in t.consults.values() if c.patient_id == patient_id]:
            t.consults[consult.id] = replace(consult, status=ConsultStatus.ERASED)
        self._change(
            patient_id,
            display_name=None,
            telegram_user_id=None,
            telegram_chat_id=None,
            status=PatientStatus.ERASED,
        )


class MemoryVoiceNotes(_Repository):
    async def add(
        self,
        patient_id: int,
        consult_id: int | None,
        duration: int,
        audio: bytes,
        now: datetime,
        *,
        transcript: str | None = None,
        status: str = "kept",
    ) -> int:
        note_id = self._t.new_id("voice_notes")
        self._t.voice_notes[note_id] = {
            "id": note_id,
            "patient_id": patient_id,
            "consult_id": consult_id,
            "duration_s": duration,
            "audio": bytes(audio),
            "transcript": transcript,
            "status": status,
            "created_at": iso(now),
        }
        return note_id

    async def get(self, note_id: int) -> Any:
        note = self._t.voice_notes.get(note_id)
        return dict(note) if note is not None else None

    async def set_status(self, note_id: int, status: str) -> None:
        if note_id in self._t.voice_notes:
            self._t.voice_notes[note_id]["status"] = status

    async def pending(self, patient_id: int) -> Any:
        found = [
            n
            for _, n in sorted(self._t.voice_notes.items())
            if n["patient_id"] == patient_id and n["status"] == "pending"
        ]
        return dict(found[-1]) if found else None


class MemoryConsults(_Repository):
    async def add(
        self,
        practice_id: int,
        patient_id: int,
        clinician_id: int | None,
        scheduled_at: datetime,
        now: datetime,
    ) -> int:
        consult_id = self._t.new_id("consults")
        self._t.consults[consult_id] = Consult(
            consult_id, practice_id, patient_id, clinician_id, scheduled_at, ConsultStatus.INVITED, None
        )
        return consult_id

    async def get(self, consult_id: int) -> Consult | None:
        return self._t.consults.get(consult_id)

    async def set_status(self, consult_id: int, status: str, completed_at: datetime | None = None) -> None:
        consult = self._t.consults.get(consult_id)
        if consult is not None:
            self._t.consults[consult_id] = replace(
                consult, status=ConsultStatus(status), completed_at=completed_at or consult.completed_at
            )

    def _sorted(self, keep: Callable[[Consult], bool]) -> list[Consult]:
        return sorted((c for c in self._t.consults.values() if keep(c)), key=lambda c: (c.scheduled_at, c.id))

    async def upcoming(self, practice_id: int, since: datetime, limit: int = 20) -> list[Consult]:
        return self._sorted(lambda c: c.practice_id == practice_id and c.scheduled_at >= since)[:limit]

    async def of_patient(self, patient_id: int) -> list[Consult]:
        return self._sorted(lambda c: c.patient_id == patient_id)

    async def of_practice(self, practice_id: int) -> list[Consult]:
        return self._sorted(lambda c: c.practice_id == practice_id)

    async def latest(self, patient_id: int) -> Consult | None:
        found = self._sorted(lambda c: c.patient_id == patient_id)
        return found[-1] if found else None

    async def previous(self, consult: Consult) -> Consult | None:
        """The patient's most recent earlier consult with a completed intake."""
        found = self._sorted(
            lambda c: (
                c.patient_id == consult.patient_id
                and c.id != consult.id
                and c.status == ConsultStatus.READY
                and c.scheduled_at < consult.scheduled_at
            )
        )
        return found[-1] if found else None


class MemoryUpdates(_Repository):
    async def is_processed(self, update_id: int) -> bool:
        return update_id in self._t.processed

    async def mark_processed(self, update_id: int, now: datetime) -> None:
        """The update is applied; in the caller's transaction (the one that records the answer).
        Its inbox row is handled too, and its content forgotten."""
        self._t.processed.setdefault(update_id, now)


class MemorySafety(_Repository):
    async def add_event(
        self, patient_id: int | None, consult_id: int | None, flag: str, route: str, now: datetime
    ) -> None:
        self._t.safety_events.append(
            {"patient_id": patient_id, "consult_id": consult_id, "flag": flag, "route": route, "at": now}
        )

    async def flags(self, consult_id: int) -> list[str]:
        return sorted({e["flag"] for e in self._t.safety_events if e["consult_id"] == consult_id})

    async def add_check(
        self,
        patient_id: int | None,
        consult_id: int | None,
        flags: list[str],
        held_seq: int | None,
        now: datetime,
    ) -> int:
        check_id = self._t.new_id("safety_checks")
        self._t.safety_checks[check_id] = SafetyCheck(
            check_id, patient_id, consult_id, tuple(f for f in flags if f), held_seq, from_iso(iso(now)), None
        )
        return check_id

    async def check(self, check_id: int) -> SafetyCheck | None:
        return self._t.safety_checks.get(check_id)

    async def answer_check(self, check_id: int, answer: str, now: datetime) -> bool:
        """Record the answer once; False when it was answered already (a double tap)."""
        check = self._t.safety_checks.get(check_id)
        if check is None or check.answer is not None:
            return False
        self._t.safety_checks[check_id] = replace(check, answer=answer)
        return True

    async def open_check(self, patient_id: int, since: datetime) -> SafetyCheck | None:
        """The latest unanswered check asked since ``since``."""
        found = [
            c
            for _, c in sorted(self._t.safety_checks.items())
            if c.patient_id == patient_id and c.answer is None and iso(c.asked_at) >= iso(since)
        ]
        return found[-1] if found else None

    async def checks(self, consult_id: int) -> list[SafetyCheck]:
        return [c for _, c in sorted(self._t.safety_checks.items()) if c.consult_id == consult_id]


class MemoryOutbox(_Repository):
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
        item_id = self._t.new_id("outbox")
        self._t.outbox[item_id] = {
            "id": item_id,
            "kind": str(kind),
            "chat_id": chat_id,
            "payload_json": json.dumps(payload, ensure_ascii=False),  # as SQLite keeps it: JSON only
            "due_at": iso(due_at),
            "status": "pending",
            "attempts": 0,
            "telegram_message_id": None,
            "created_at": iso(now),
            "sent_at": None,
            "patient_id": patient_id,
            "consult_id": consult_id,
        }
        return item_id

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
        rows = [r for r in self._t.outbox.values() if r["status"] == "pending" and r["due_at"] <= iso(now)]
        rows.sort(key=lambda r: (_PRIORITY.get(r["kind"], 3), r["due_at"], r["id"]))
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
            for r in rows[:limit]
        ]

    def _update(self, item_id: int, **changes: Any) -> None:
        if item_id in self._t.outbox:
            self._t.outbox[item_id].update(changes)

    async def sent(self, item_id: int, message_id: int | None, now: datetime) -> None:
        attempts = self._t.outbox[item_id]["attempts"] + 1 if item_id in self._t.outbox else 0
        self._update(
            item_id, status="sent", sent_at=iso(now), telegram_message_id=message_id, attempts=attempts
        )

    async def retry(self, item_id: int, due_at: datetime, *, give_up: bool) -> None:
        attempts = self._t.outbox[item_id]["attempts"] + 1 if item_id in self._t.outbox else 0
        self._update(
            item_id, attempts=attempts, due_at=iso(due_at), status="failed" if give_up else "pending"
        )

    async def parts_sent(self, item_id: int, parts: int) -> None:
        """A multi-part row: the first ``parts`` messages went out."""
        if item_id in self._t.outbox:
            payload = json.loads(self._t.outbox[item_id]["payload_json"])
            self._update(
                item_id, payload_json=json.dumps({**payload, "_parts_sent": parts}, ensure_ascii=False)
            )

    async def cancel(self, item_id: int) -> None:
        self._update(item_id, status="cancelled")

    async def rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        columns = ("id", "kind", "chat_id", "status", "attempts", "consult_id", "payload_json")
        return [
            {**{c: r[c] for c in columns}, "payload": json.loads(r["payload_json"])}
            for _, r in sorted(self._t.outbox.items())
            if kind is None or r["kind"] == kind
        ]


class MemoryPlans(_Repository):
    async def plan_id(self, patient_id: int) -> int | None:
        return next((k for k, p in self._t.plans.items() if p["patient_id"] == patient_id), None)

    async def add_plan(self, patient_id: int, now: datetime) -> int:
        if await self.plan_id(patient_id) is not None:
            raise ValueError("UNIQUE constraint failed: plans.patient_id")
        plan_id = self._t.new_id("plans")
        self._t.plans[plan_id] = {"id": plan_id, "patient_id": patient_id, "created_at": iso(now)}
        return plan_id

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
        goal_id = self._t.new_id("goals")
        self._t.goals[goal_id] = {
            "id": goal_id,
            "plan_id": plan_id,
            "text": text,
            "follow_up_on": follow_up_on,
            "author": author,
            "created_at": iso(now),
            "ended_at": None,
            "replaces": None,
            "teachback": teachback,
            "next_review_at": iso(next_review_at),
        }
        return goal_id

    async def practice_of_goal(self, goal_id: int) -> int | None:
        goal = self._t.goals.get(goal_id)
        if goal is None or goal["ended_at"] is not None:
            return None
        patient = self._t.patients.get(self._t.plans[goal["plan_id"]]["patient_id"])
        return patient.practice_id if patient is not None else None

    async def goal(self, goal_id: int) -> Any:
        goal = self._t.goals.get(goal_id)
        return dict(goal) if goal is not None else None

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
        action_id = self._t.new_id("actions")
        self._t.actions[action_id] = {
            "id": action_id,
            "goal_id": goal_id,
            "what": what,
            "schedule_json": schedule_json,
            "measurement": measurement,
            "author": author,
            "created_at": iso(now),
            "ended_at": None,
            "replaces": replaces,
            "next_due_at": iso(next_due_at) if next_due_at else None,
            "limits_json": limits_json,
        }
        return action_id

    async def active_action(self, action_id: int) -> Any:
        action = self._t.actions.get(action_id)
        return dict(action) if action is not None and action["ended_at"] is None else None

    async def end_action(self, action_id: int, now: datetime) -> bool:
        action = self._t.actions.get(action_id)
        if action is None or action["ended_at"] is not None:
            return False
        action.update(ended_at=iso(now), next_due_at=None)
        return True

    async def end_goal(self, goal_id: int, now: datetime) -> bool:
        goal = self._t.goals.get(goal_id)
        ended = goal is not None and goal["ended_at"] is None
        if goal is not None and ended:
            goal.update(ended_at=iso(now), next_review_at=None)
        for action in self._t.actions.values():
            if action["goal_id"] == goal_id and action["ended_at"] is None:
                action.update(ended_at=iso(now), next_due_at=None)
        return ended

    async def goals(self, patient_id: int) -> list[Any]:
        plan_id = await self.plan_id(patient_id)
        return [dict(g) for _, g in sorted(self._t.goals.items()) if g["plan_id"] == plan_id]

    async def actions(self, goal_id: int) -> list[Any]:
        return [dict(a) for _, a in sorted(self._t.actions.items()) if a["goal_id"] == goal_id]

    async def due_actions(self, until: datetime, limit: int) -> list[int]:
        """Active actions due at or before ``until``: a range scan on the partial index."""
        due = [
            a
            for a in self._t.actions.values()
            if a["ended_at"] is None and a["next_due_at"] is not None and a["next_due_at"] <= iso(until)
        ]
        due.sort(key=lambda a: (a["next_due_at"], a["id"]))
        return [a["id"] for a in due[:limit]]


class MemoryReminders(_Repository):
    def _reminder(self, row: Row) -> Reminder:
        """The row with its goal and action joined, as ``bot/storage/reminders.py`` selects it."""
        action = self._t.actions.get(row["action_id"]) if row["action_id"] is not None else None
        goal = self._t.goals[row["goal_id"]]
        limits = action["limits_json"] if action else None
        joined = {
            **row,
            "what": action["what"] if action else "",
            "measurement": action["measurement"] if action else None,
            "goal_text": goal["text"],
            "schedule_json": action["schedule_json"] if action else None,
            "limits_json": limits,
        }
        return reminder_from_row(joined)

    async def due_action(self, action_id: int) -> DueAction | None:
        a = self._t.actions.get(action_id)
        if a is None or a["ended_at"] is not None or a["next_due_at"] is None:
            return None
        plan = self._t.plans[self._t.goals[a["goal_id"]]["plan_id"]]
        return DueAction(
            a["id"], a["goal_id"], plan["patient_id"], a["schedule_json"], from_iso(a["next_due_at"])
        )

    async def set_next_due(self, action_id: int, next_due_at: datetime | None) -> None:
        if action_id in self._t.actions:
            self._t.actions[action_id]["next_due_at"] = iso(next_due_at) if next_due_at else None

    async def due_reviews(self, until: datetime, limit: int) -> list[tuple[int, int, datetime]]:
        """(goal id, patient id, review moment) of active goals whose weekly look back is due."""
        due = [
            g
            for g in self._t.goals.values()
            if g["ended_at"] is None and g["next_review_at"] is not None and g["next_review_at"] <= iso(until)
        ]
        due.sort(key=lambda g: g["next_review_at"])
        return [
            (g["id"], self._t.plans[g["plan_id"]]["patient_id"], from_iso(g["next_review_at"]))
            for g in due[:limit]
        ]

    async def set_next_review(self, goal_id: int, moment: datetime) -> None:
        if goal_id in self._t.goals:
            self._t.goals[goal_id]["next_review_at"] = iso(moment)

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
        moment = iso(due_at)
        if action_id is not None and any(
            r["action_id"] == action_id and r["due_at"] == moment for r in self._t.reminders.values()
        ):
            return None  # UNIQUE (action_id, due_at); NULL action ids never clash
        reminder_id = self._t.new_id("reminders")
        self._t.reminders[reminder_id] = {
            "id": reminder_id,
            "patient_id": patient_id,
            "goal_id": goal_id,
            "action_id": action_id,
            "kind": kind,
            "due_at": moment,
            "status": str(ReminderStatus(status)),
            "later_count": 0,
            "value_json": None,
            "barrier": None,
            "note": None,
            "awaiting": None,
            "answered_at": None,
            "created_at": iso(now),
        }
        return reminder_id

    async def get(self, reminder_id: int) -> Reminder | None:
        row = self._t.reminders.get(reminder_id)
        return self._reminder(row) if row is not None else None

    async def awaiting(self, patient_id: int) -> Reminder | None:
        """The reminder whose typed answer (a value, a few words) the bot is waiting for."""
        found = [
            r
            for _, r in sorted(self._t.reminders.items())
            if r["patient_id"] == patient_id and r["awaiting"] is not None
        ]
        return self._reminder(found[-1]) if found else None

    async def clear_awaiting(self, patient_id: int) -> None:
        for row in self._t.reminders.values():
            if row["patient_id"] == patient_id:
                row["awaiting"] = None

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
        row = self._t.reminders.get(reminder_id)
        if row is None:
            return
        if awaiting not in (None, "value", "note"):
            raise ValueError("CHECK constraint failed: awaiting")
        if status is not None:
            row["status"] = str(ReminderStatus(status))
            row["answered_at"] = iso(now)
        if value is not None:
            row["value_json"] = json.dumps(value)
        row["barrier"] = barrier if barrier is not None else row["barrier"]
        row["note"] = note if note is not None else row["note"]
        row["awaiting"] = awaiting
        row["later_count"] += int(later)

    async def mark_missed(self, reminder_id: int) -> None:
        row = self._t.reminders.get(reminder_id)
        if row is not None and row["status"] in (ReminderStatus.PENDING, ReminderStatus.LATER):
            row["status"] = str(ReminderStatus.MISSED)

    async def recent(self, action_id: int, limit: int) -> list[Reminder]:
        """The latest reminders of an action up to now, newest first."""
        rows = [r for r in self._t.reminders.values() if r["action_id"] == action_id]
        rows.sort(key=lambda r: (r["due_at"], r["id"]), reverse=True)
        return [self._reminder(r) for r in rows[:limit]]

    async def of_patient(self, patient_id: int, since: datetime, until: datetime) -> list[Reminder]:
        rows = [
            r
            for r in self._t.reminders.values()
            if r["patient_id"] == patient_id and iso(since) <= r["due_at"] <= iso(until)
        ]
        rows.sort(key=lambda r: (r["due_at"], r["id"]))
        return [self._reminder(r) for r in rows]

    async def cancel_pending_outbox(self, patient_id: int) -> None:
        """Nothing more goes to a patient who blocked the bot."""
        for row in self._t.outbox.values():
            if row["patient_id"] == patient_id and row["status"] == "pending":
                row["status"] = "cancelled"


class MemoryStore:
    """Implements ``bot.storage.ports.UnitOfWork`` in memory (see the module's notes)."""

    def __init__(self) -> None:
        self.tables = Tables()
        self.practices = MemoryPractices(self)
        self.clinicians = MemoryClinicians(self)
        self.patients = MemoryPatients(self)
        self.voice_notes = MemoryVoiceNotes(self)
        self.consults = MemoryConsults(self)
        self.updates = MemoryUpdates(self)
        self.safety = MemorySafety(self)
        self.outbox = MemoryOutbox(self)
        self.plans = MemoryPlans(self)
        self.reminders = MemoryReminders(self)
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None
        self.commits = 0  # outermost transactions that ended without an exception
        self.rollbacks = 0

    # Not faked yet: reaching one fails loudly instead of passing with made-up rows.
    @property
    def invites(self) -> Invites:
        raise NotImplementedError("MemoryStore has no invites yet (bot/testing/memory.py)")

    @property
    def consents(self) -> Consents:
        raise NotImplementedError("MemoryStore has no consents yet (bot/testing/memory.py)")

    @property
    def answers(self) -> Answers:
        raise NotImplementedError("MemoryStore has no answers yet (bot/testing/memory.py)")

    @property
    def conversations(self) -> Conversations:
        raise NotImplementedError("MemoryStore has no conversations yet (bot/testing/memory.py)")

    @property
    def inbox(self) -> Inbox:
        raise NotImplementedError("MemoryStore has no inbox yet (bot/testing/memory.py)")

    @property
    def web(self) -> WebStore:
        raise NotImplementedError("MemoryStore has no web store yet (bot/testing/memory.py)")

    @property
    def health(self) -> Health:
        raise NotImplementedError("MemoryStore has no health figures yet (bot/testing/memory.py)")

    @property
    def retention(self) -> Retention:
        raise NotImplementedError("MemoryStore has no retention yet (bot/testing/memory.py)")

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            yield  # an inner block joins the outer one
            return
        async with self._lock:
            self._holder = task
            saved = copy.deepcopy(self.tables)
            try:
                yield
            except BaseException:
                self.tables = saved
                self.rollbacks += 1
                raise
            else:
                self.commits += 1
            finally:
                self._holder = None

    def scope(self) -> AbstractContextManager[None]:
        return nullcontext()


if TYPE_CHECKING:

    def _is_a_unit_of_work(store: MemoryStore) -> UnitOfWork:
        return store  # mypy checks here that MemoryStore implements the Protocol
