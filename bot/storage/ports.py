"""The storage ports: what services may ask of storage, one Protocol per aggregate, and the unit of
work that holds them and opens transactions.

Services depend on these Protocols and on the row types in ``bot.storage.models`` only, never on
SQLite (``tests/test_storage_ports.py`` keeps it so). The SQLite implementation is
``bot.storage.store.SqliteStore``; a PostgreSQL one would implement the same Protocols (see the
README's "How it is built").
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from datetime import date, datetime
from typing import Any, Protocol

from bot.storage.models import (
    Clinician,
    Consult,
    Conversation,
    DueAction,
    InboxRow,
    Invite,
    OutboxItem,
    Patient,
    Practice,
    Reminder,
    RetentionFacts,
    RetentionHold,
    RetentionState,
    SafetyCheck,
)


class Practices(Protocol):
    """Practices (the tenants)."""

    async def add(self, name: str, now: datetime) -> int: ...

    async def get(self, practice_id: int) -> Practice | None: ...

    async def all(self) -> list[Practice]: ...


class Clinicians(Protocol):
    """POHs and GPs, linked to their Telegram chat."""

    async def add(self, practice_id: int, name: str, now: datetime) -> int: ...

    async def get(self, clinician_id: int) -> Clinician | None: ...

    async def by_telegram(self, user_id: int) -> Clinician | None: ...

    async def link(self, clinician_id: int, user_id: int, chat_id: int) -> None: ...

    async def agenda_recipients(self, practice_id: int, clinician_id: int | None) -> list[Clinician]:
        """The named clinician if linked, otherwise every linked clinician of the practice."""
        ...


class Patients(Protocol):
    """Patients, their settings, and erasure of everything about them."""

    async def add(self, practice_id: int, display_name: str | None, now: datetime) -> int: ...

    async def get(self, patient_id: int, *, fresh: bool = False) -> Patient | None:
        """``fresh``: read SQLite even inside a scope (after waiting for the patient's lock, where
        another task may have changed the row); the map keeps what it read."""
        ...

    async def by_telegram(self, user_id: int) -> Patient | None: ...

    async def link(self, patient_id: int, user_id: int, chat_id: int) -> None: ...

    async def set_status(self, patient_id: int, status: str) -> None: ...

    async def set_blocked(self, patient_id: int, now: datetime | None) -> bool:
        """Record that the patient blocked the bot (``now``) or wrote again (None); True if changed."""
        ...

    async def set_preference(self, patient_id: int, name: str, value: bool) -> None: ...

    async def set_settings(
        self, patient_id: int, *, discreet: bool, quiet_start: str | None, quiet_end: str | None
    ) -> None: ...

    async def erase(self, patient_id: int, now: datetime) -> None:
        """Remove every piece of the patient's data; keep a tombstone the POH can see."""
        ...


class VoiceNotes(Protocol):
    """Voice answers: audio kept for the POH, or pending a transcript check."""

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
    ) -> int: ...

    async def get(self, note_id: int) -> Any: ...

    async def set_status(self, note_id: int, status: str) -> None: ...

    async def pending(self, patient_id: int) -> Any: ...


class Consults(Protocol):
    """Consults: when, with whom, and how far the intake is."""

    async def add(
        self,
        practice_id: int,
        patient_id: int,
        clinician_id: int | None,
        scheduled_at: datetime,
        now: datetime,
    ) -> int: ...

    async def get(self, consult_id: int) -> Consult | None: ...

    async def set_status(
        self, consult_id: int, status: str, completed_at: datetime | None = None
    ) -> None: ...

    async def upcoming(self, practice_id: int, since: datetime, limit: int = 20) -> list[Consult]: ...

    async def of_patient(self, patient_id: int) -> list[Consult]: ...

    async def of_practice(self, practice_id: int) -> list[Consult]: ...

    async def latest(self, patient_id: int) -> Consult | None: ...

    async def previous(self, consult: Consult) -> Consult | None:
        """The patient's most recent earlier consult with a completed intake."""
        ...


class Invites(Protocol):
    """Single-use invite links (only their hash is stored)."""

    async def add(
        self,
        *,
        token_hash: str,
        kind: str,
        practice_id: int,
        expires_at: datetime,
        now: datetime,
        patient_id: int | None = None,
        clinician_id: int | None = None,
        consult_id: int | None = None,
    ) -> int: ...

    async def by_hash(self, token_hash: str) -> Invite | None: ...

    async def use(self, invite_id: int, now: datetime) -> bool:
        """Mark an invite used; False if it was used already (single use, race-safe)."""
        ...


class Consents(Protocol):
    """Consent given or withdrawn, per version of the consent text."""

    async def add(
        self, patient_id: int, consult_id: int, version: str, given: bool, now: datetime
    ) -> None: ...

    async def of_patient(self, patient_id: int) -> list[dict[str, Any]]: ...


class Answers(Protocol):
    """A consult's intake answers, one row per question key."""

    async def save(self, consult_id: int, key: str, value: Any, now: datetime) -> None: ...

    async def delete(self, consult_id: int, key: str) -> None: ...

    async def of_consult(self, consult_id: int) -> dict[str, Any]: ...


class Conversations(Protocol):
    """Each patient's place in a flow (state as JSON, a sequence number per question)."""

    async def get(self, patient_id: int) -> Conversation | None: ...

    async def save(
        self,
        patient_id: int,
        consult_id: int,
        flow: str,
        state: dict[str, Any],
        now: datetime,
        *,
        paused: bool = False,
    ) -> None: ...

    async def set_paused(self, patient_id: int, paused: bool) -> None: ...

    async def mark_prompted(self, patient_id: int, seq: int) -> None: ...

    async def unprompted(self) -> list[Conversation]:
        """Conversations whose current question may never have reached the patient."""
        ...


class Updates(Protocol):
    """Telegram updates already applied (exactly once, with their inbox rows)."""

    async def is_processed(self, update_id: int) -> bool: ...

    async def mark_processed(self, update_id: int, now: datetime) -> None:
        """The update is applied; in the caller's transaction (the one that records the answer).
        Its inbox row is handled too, and its content forgotten."""
        ...


class SafetyRecords(Protocol):
    """Safety events (a route shown) and checks (a yes/no question after risk words)."""

    async def add_event(
        self, patient_id: int | None, consult_id: int | None, flag: str, route: str, now: datetime
    ) -> None: ...

    async def flags(self, consult_id: int) -> list[str]: ...

    async def add_check(
        self,
        patient_id: int | None,
        consult_id: int | None,
        flags: list[str],
        held_seq: int | None,
        now: datetime,
    ) -> int: ...

    async def check(self, check_id: int) -> SafetyCheck | None: ...

    async def answer_check(self, check_id: int, answer: str, now: datetime) -> bool:
        """Record the answer once; False when it was answered already (a double tap)."""
        ...

    async def open_check(self, patient_id: int, since: datetime) -> SafetyCheck | None:
        """The latest unanswered check asked since ``since``."""
        ...

    async def checks(self, consult_id: int) -> list[SafetyCheck]: ...


class Outbox(Protocol):
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
    ) -> int: ...

    async def enqueue_plan_start(
        self, patient: Patient, consult_id: int, due_at: datetime, now: datetime
    ) -> int:
        """Ask the patient to make their own plan (the ``plan_start`` renderer decides at send time)."""
        ...

    async def due(self, now: datetime, limit: int = 100) -> list[OutboxItem]: ...

    async def sent(self, item_id: int, message_id: int | None, now: datetime) -> None: ...

    async def retry(self, item_id: int, due_at: datetime, *, give_up: bool) -> None: ...

    async def parts_sent(self, item_id: int, parts: int) -> None:
        """A multi-part row: the first ``parts`` messages went out."""
        ...

    async def cancel(self, item_id: int) -> None: ...

    async def rows(self, kind: str | None = None) -> list[dict[str, Any]]: ...


class Inbox(Protocol):
    async def store(self, updates: list[tuple[int, int | None, dict[str, Any]]]) -> list[InboxRow]:
        """Commit a batch in one transaction; returns the rows that were new (a batch seen again
        after a crash before its offset was confirmed is not stored twice)."""
        ...

    async def pending(self) -> list[InboxRow]: ...

    async def next_offset(self) -> int: ...

    async def failed(self, update_id: int, reason: str) -> None: ...

    async def prune(self) -> int:
        """Old handled and failed rows go; the newest row stays (it holds the offset)."""
        ...

    async def counts(self) -> dict[str, int]: ...


class Plans(Protocol):
    async def plan_id(self, patient_id: int) -> int | None: ...

    async def add_plan(self, patient_id: int, now: datetime) -> int: ...

    async def add_goal(
        self,
        plan_id: int,
        text: str,
        follow_up_on: str | None,
        author: str,
        now: datetime,
        teachback: str | None,
        next_review_at: datetime,
    ) -> int: ...

    async def practice_of_goal(self, goal_id: int) -> int | None: ...

    async def goal(self, goal_id: int) -> Any: ...

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
    ) -> int: ...

    async def active_action(self, action_id: int) -> Any: ...

    async def end_action(self, action_id: int, now: datetime) -> bool: ...

    async def end_goal(self, goal_id: int, now: datetime) -> bool: ...

    async def goals(self, patient_id: int) -> list[Any]: ...

    async def actions(self, goal_id: int) -> list[Any]: ...

    async def due_actions(self, until: datetime, limit: int) -> list[int]:
        """Active actions due at or before ``until``: a range scan on the partial index."""
        ...


class Reminders(Protocol):
    async def due_action(self, action_id: int) -> DueAction | None: ...

    async def set_next_due(self, action_id: int, next_due_at: datetime | None) -> None: ...

    async def due_reviews(self, until: datetime, limit: int) -> list[tuple[int, int, datetime]]:
        """(goal id, patient id, review moment) of active goals whose weekly look back is due."""
        ...

    async def set_next_review(self, goal_id: int, moment: datetime) -> None: ...

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
        ...

    async def get(self, reminder_id: int) -> Reminder | None: ...

    async def awaiting(self, patient_id: int) -> Reminder | None:
        """The reminder whose typed answer (a value, a few words) the bot is waiting for."""
        ...

    async def clear_awaiting(self, patient_id: int) -> None: ...

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
        ...

    async def mark_missed(self, reminder_id: int) -> None: ...

    async def recent(self, action_id: int, limit: int) -> list[Reminder]:
        """The latest reminders of an action up to now, newest first."""
        ...

    async def of_patient(self, patient_id: int, since: datetime, until: datetime) -> list[Reminder]: ...

    async def cancel_pending_outbox(self, patient_id: int) -> None:
        """Nothing more goes to a patient who blocked the bot."""
        ...


class WebStore(Protocol):
    async def add_account(
        self,
        practice_id: int,
        username: str,
        display_name: str,
        password_hash: str,
        role: str,
        clinician_id: int | None,
        now: datetime,
    ) -> int: ...

    async def account_by_username(self, username: str) -> Any: ...

    async def account(self, account_id: int) -> Any: ...

    async def accounts(self, practice_id: int) -> list[Any]: ...

    async def login_failed(self, account_id: int) -> int:
        """One more wrong password or code in a row; returns how many now."""
        ...

    async def lock_account(self, account_id: int, until: datetime) -> None: ...

    async def login_ok(self, account_id: int) -> None: ...

    async def set_password(self, account_id: int, password_hash: str) -> None: ...

    async def reset_account(self, account_id: int, now: datetime) -> None:
        """No password, no app, no sessions, no working link: the holder starts again."""
        ...

    async def add_enrolment(self, token_hash: str, account_id: int, now: datetime, expires: datetime) -> None:
        """A new link for the account; any older link of it stops working."""
        ...

    async def enrolment(self, token_hash: str) -> Any: ...

    async def complete_enrolment(
        self, token_hash: str, account_id: int, password_hash: str, now: datetime
    ) -> bool:
        """Use the link (once) and set the password and the linked app; False when it was used."""
        ...

    async def set_totp(self, account_id: int, secret: str | None, confirmed: bool) -> None: ...

    async def use_totp_step(self, account_id: int, step: int) -> bool:
        """Accept each TOTP code once: False when this step (or a later one) was used already."""
        ...

    async def add_session(
        self, token_hash: str, account_id: int, csrf: str, now: datetime, expires: datetime
    ) -> None: ...

    async def session(self, token_hash: str) -> Any: ...

    async def touch_session(self, token_hash: str, now: datetime, expires: datetime) -> None: ...

    async def renew_session(self, token_hash: str, new_hash: str, csrf: str) -> None:
        """The same session (its start, its steps) under a new token and CSRF token."""
        ...

    async def end_sessions(self, account_id: int, keep: str | None = None) -> None:
        """End every session of the account (but ``keep``)."""
        ...

    async def session_second_factor(self, token_hash: str) -> None: ...

    async def end_session(self, token_hash: str) -> None: ...

    async def audit(
        self,
        now: datetime,
        event: str,
        user_name: str,
        *,
        account_id: int | None = None,
        practice_id: int | None = None,
        patient_id: int | None = None,
        consult_id: int | None = None,
        on_behalf_of: str | None = None,
        detail: str | None = None,
        client_address: str | None = None,
    ) -> None: ...

    async def audit_rows(self, practice_id: int, limit: int = 500) -> list[Any]: ...


class Health(Protocol):
    """Signs of life and figures for ``python -m bot health`` and ``GET /healthz`` (no patient data)."""

    async def beat(self, name: str, at: datetime) -> None:
        """Record a sign of life under ``name`` (``scheduler``: a finished tick)."""
        ...

    async def last_beat(self, name: str) -> datetime | None: ...

    async def schema(self) -> tuple[list[int], list[int]]:
        """(migration versions applied to the database, versions this code knows)."""
        ...

    async def outbox_backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """Due pending outbox rows: how many, and when the oldest was due."""
        ...


class Retention(Protocol):
    """What the retention rule weighs per patient (``bot.services.retention`` decides), the holds a
    POH sets, and the state of the daily run."""

    async def facts(
        self, *, practice_id: int | None = None, patient_id: int | None = None
    ) -> list[RetentionFacts]:
        """Every patient not erased (of one practice, or one patient), in id order."""
        ...

    async def add_hold(
        self,
        patient_id: int,
        until: date,
        reason: str,
        account_id: int | None,
        user_name: str,
        now: datetime,
    ) -> int: ...

    async def holds(self, practice_id: int, from_day: date) -> list[RetentionHold]:
        """Per patient of the practice (not erased) the hold that runs longest, if it runs to
        ``from_day`` or later; the longest first."""
        ...

    async def state(self) -> RetentionState | None: ...

    async def claim_day(self, day: date, months: int, since: date) -> bool:
        """Record the run of ``day``; False when that day (or a later one) ran already, so two
        ticks (or two processes) never run one day twice."""
        ...


class UnitOfWork(Protocol):
    """Every repository over one store, and the write transaction they share.

    ``async with store.transaction():`` makes every write inside it one atomic unit (re-entrant:
    an inner block joins the outer one); reads inside it see its own writes, reads outside it see
    committed rows only.
    """

    @property
    def practices(self) -> Practices: ...
    @property
    def clinicians(self) -> Clinicians: ...
    @property
    def patients(self) -> Patients: ...
    @property
    def voice_notes(self) -> VoiceNotes: ...
    @property
    def consults(self) -> Consults: ...
    @property
    def invites(self) -> Invites: ...
    @property
    def consents(self) -> Consents: ...
    @property
    def answers(self) -> Answers: ...
    @property
    def conversations(self) -> Conversations: ...
    @property
    def updates(self) -> Updates: ...
    @property
    def safety(self) -> SafetyRecords: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def inbox(self) -> Inbox: ...
    @property
    def plans(self) -> Plans: ...
    @property
    def reminders(self) -> Reminders: ...
    @property
    def web(self) -> WebStore: ...
    @property
    def health(self) -> Health: ...
    @property
    def retention(self) -> Retention: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...

    def scope(self) -> AbstractContextManager[None]:
        """One update's identity map: inside it each patient, practice and actor is read once."""
        ...
