"""The rows the repositories hand out: plain frozen dataclasses, no SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any


# The values the database's CHECK constraints allow (migrations), named once. A StrEnum equals
# its string, so rows read back as plain text compare equal to these.
class PatientStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    STOPPED = "stopped"  # the patient typed /stop
    ERASED = "erased"


class ConsultStatus(StrEnum):
    INVITED = "invited"
    IN_PROGRESS = "in_progress"
    READY = "ready"  # the agenda is there
    DECLINED = "declined"
    ERASED = "erased"


class ReminderStatus(StrEnum):
    PENDING = "pending"
    LATER = "later"
    DONE = "done"
    NOT_DONE = "not_done"
    MISSED = "missed"
    CANCELLED = "cancelled"


class VoiceNoteStatus(StrEnum):
    KEPT = "kept"
    PENDING = "pending"  # "Klopt dit?" waits for an answer
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class OutboxKind(StrEnum):
    """What an outbox row is; each kind has one renderer (``App.attach_channel``)."""

    AGENDA = "agenda"  # to the POH: an intake is complete
    ALERT = "alert"  # to the POH: a safety route, or a check question left unanswered
    SIGNAL = "signal"  # to the POH: a measurement or a streak of not-done reminders
    BLOCKED = "blocked"  # to the POH: a patient blocked the bot
    REJECTED = "rejected"  # to the POH: Telegram refused a message to a patient
    REMINDER = "reminder"  # to the patient
    PLAN_START = "plan_start"  # to the patient: shall we make your plan?
    REPLY = "reply"  # to anyone: a direct answer Telegram held back (429); sent as soon as it may


@dataclass(frozen=True)
class Practice:
    id: int
    name: str


@dataclass(frozen=True)
class Clinician:
    id: int
    practice_id: int
    display_name: str
    telegram_user_id: int | None
    telegram_chat_id: int | None
    active: bool


@dataclass(frozen=True)
class Patient:
    id: int
    practice_id: int
    display_name: str | None
    telegram_user_id: int | None
    telegram_chat_id: int | None
    status: PatientStatus
    discreet: bool = False  # reminders say only "time for your action" until tapped
    quiet_start: str | None = None  # local HH:MM, None: the default quiet hours
    quiet_end: str | None = None
    blocked: bool = False  # Telegram said the patient blocked the bot
    read_aloud: bool | None = None  # None: not asked yet
    simple_mode: bool | None = None

    @property
    def reachable(self) -> bool:
        return self.status == PatientStatus.ACTIVE and not self.blocked and self.telegram_chat_id is not None


@dataclass(frozen=True)
class SafetyCheck:
    """One direct yes/no question after risk words (the safety net's "check" tier)."""

    id: int
    patient_id: int | None
    consult_id: int | None
    flags: tuple[str, ...]
    held_seq: int | None
    asked_at: datetime
    answer: str | None  # "yes", "no", or None while unanswered


@dataclass(frozen=True)
class Consult:
    id: int
    practice_id: int
    patient_id: int
    clinician_id: int | None
    scheduled_at: datetime
    status: ConsultStatus
    completed_at: datetime | None


@dataclass(frozen=True)
class Invite:
    id: int
    kind: str
    practice_id: int
    patient_id: int | None
    clinician_id: int | None
    consult_id: int | None
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class Conversation:
    patient_id: int
    consult_id: int
    flow: str
    state: dict[str, Any]
    seq: int
    prompted_seq: int
    paused: bool


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    chat_id: int
    payload: dict[str, Any]
    due_at: datetime
    attempts: int
    patient_id: int | None
    consult_id: int | None


# a reminder the patient may still answer
OPEN = (ReminderStatus.PENDING, ReminderStatus.LATER, ReminderStatus.MISSED)


@dataclass(frozen=True)
class Reminder:
    id: int
    patient_id: int
    goal_id: int
    action_id: int | None
    kind: str  # action | review
    due_at: datetime
    status: ReminderStatus
    later_count: int
    value: Any
    barrier: str | None
    note: str | None
    awaiting: str | None
    # joined for rendering
    what: str
    measurement: str | None
    goal_text: str
    schedule_json: str | None
    limits: dict[str, Any] | None = None  # the POH's limits for this action's measurement

    @property
    def open(self) -> bool:
        return self.status in OPEN


@dataclass(frozen=True)
class DueAction:
    action_id: int
    goal_id: int
    patient_id: int
    schedule_json: str
    next_due_at: datetime


@dataclass(frozen=True)
class InboxRow:
    update_id: int
    chat_key: int | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class RetentionFacts:
    """What the retention rule (``bot.services.retention``) weighs for one patient who is not
    erased: their latest moments (UTC; None when there is none of that kind), whether their plan
    still runs, and the longest hold a POH set."""

    patient_id: int
    practice_id: int
    consult_id: int | None  # their latest consult, the number the POH knows
    created_at: datetime
    last_consult_at: datetime | None  # the latest consult's planned moment
    last_completed_at: datetime | None  # the latest completed intake
    last_plan_change_at: datetime | None  # the latest goal or action added or ended
    last_answer_at: datetime | None  # the latest answer to a reminder
    plan_running: bool  # a goal not ended, or an action with a reminder still to come
    kept_until: date | None  # local date; the longest hold set


@dataclass(frozen=True)
class RetentionHold:
    """A POH's decision to keep a patient's data longer (the latest one per patient)."""

    patient_id: int
    consult_id: int | None
    until: date
    reason: str  # the POH's own text: never logged, never in the audit log
    user_name: str
    created_at: datetime


@dataclass(frozen=True)
class RetentionState:
    """The daily run: the last local day it ran, with which RETENTION_MONTHS, since when."""

    last_day: date
    months: int
    since: date
