"""A small repository over the database. SQL lives here and nowhere else."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import from_iso, iso
from bot.storage.db import Database


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
    status: str
    discreet: bool = False  # reminders say only "time for your action" until tapped
    quiet_start: str | None = None  # local HH:MM, None: the default quiet hours
    quiet_end: str | None = None
    blocked: bool = False  # Telegram said the patient blocked the bot
    read_aloud: bool | None = None  # None: not asked yet
    simple_mode: bool | None = None

    @property
    def reachable(self) -> bool:
        return self.status == "active" and not self.blocked and self.telegram_chat_id is not None


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
    status: str
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


def _dt(value: str | None) -> datetime | None:
    return from_iso(value) if value else None


class Repository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def transaction(self):  # type: ignore[no-untyped-def]
        return self.db.transaction()

    # -- practices --------------------------------------------------------------------
    async def add_practice(self, name: str, now: datetime) -> int:
        return await self.db.execute(
            "INSERT INTO practices (name, created_at) VALUES (?, ?)", (name, iso(now))
        )

    async def get_practice(self, practice_id: int) -> Practice | None:
        row = await self.db.fetchone("SELECT id, name FROM practices WHERE id = ?", (practice_id,))
        return Practice(row["id"], row["name"]) if row else None

    async def list_practices(self) -> list[Practice]:
        rows = await self.db.fetchall("SELECT id, name FROM practices ORDER BY id")
        return [Practice(r["id"], r["name"]) for r in rows]

    # -- clinicians -------------------------------------------------------------------
    async def add_clinician(self, practice_id: int, name: str, now: datetime) -> int:
        return await self.db.execute(
            "INSERT INTO clinicians (practice_id, display_name, created_at) VALUES (?, ?, ?)",
            (practice_id, name, iso(now)),
        )

    @staticmethod
    def _clinician(row: Any) -> Clinician:
        return Clinician(
            row["id"],
            row["practice_id"],
            row["display_name"],
            row["telegram_user_id"],
            row["telegram_chat_id"],
            bool(row["active"]),
        )

    async def get_clinician(self, clinician_id: int) -> Clinician | None:
        row = await self.db.fetchone("SELECT * FROM clinicians WHERE id = ?", (clinician_id,))
        return self._clinician(row) if row else None

    async def clinician_by_telegram(self, user_id: int) -> Clinician | None:
        row = await self.db.fetchone(
            "SELECT * FROM clinicians WHERE telegram_user_id = ? AND active = 1", (user_id,)
        )
        return self._clinician(row) if row else None

    async def link_clinician(self, clinician_id: int, user_id: int, chat_id: int) -> None:
        await self.db.execute(
            "UPDATE clinicians SET telegram_user_id = ?, telegram_chat_id = ? WHERE id = ?",
            (user_id, chat_id, clinician_id),
        )

    async def agenda_recipients(self, practice_id: int, clinician_id: int | None) -> list[Clinician]:
        """The named clinician if linked, otherwise every linked clinician of the practice."""
        rows = await self.db.fetchall(
            "SELECT * FROM clinicians WHERE practice_id = ? AND active = 1 "
            "AND telegram_chat_id IS NOT NULL ORDER BY id",
            (practice_id,),
        )
        linked = [self._clinician(r) for r in rows]
        named = [c for c in linked if c.id == clinician_id]
        return named or linked

    # -- patients ---------------------------------------------------------------------
    async def add_patient(self, practice_id: int, display_name: str | None, now: datetime) -> int:
        return await self.db.execute(
            "INSERT INTO patients (practice_id, display_name, created_at) VALUES (?, ?, ?)",
            (practice_id, display_name, iso(now)),
        )

    @staticmethod
    def _patient(row: Any) -> Patient:
        return Patient(
            row["id"],
            row["practice_id"],
            row["display_name"],
            row["telegram_user_id"],
            row["telegram_chat_id"],
            row["status"],
            bool(row["discreet"]),
            row["quiet_start"],
            row["quiet_end"],
            row["blocked_at"] is not None,
            None if row["read_aloud"] is None else bool(row["read_aloud"]),
            None if row["simple_mode"] is None else bool(row["simple_mode"]),
        )

    async def get_patient(self, patient_id: int) -> Patient | None:
        row = await self.db.fetchone("SELECT * FROM patients WHERE id = ?", (patient_id,))
        return self._patient(row) if row else None

    async def patient_by_telegram(self, user_id: int) -> Patient | None:
        row = await self.db.fetchone(
            "SELECT * FROM patients WHERE telegram_user_id = ? AND status != 'erased'", (user_id,)
        )
        return self._patient(row) if row else None

    async def link_patient(self, patient_id: int, user_id: int, chat_id: int) -> None:
        await self.db.execute(
            "UPDATE patients SET telegram_user_id = ?, telegram_chat_id = ?, status = 'active' WHERE id = ?",
            (user_id, chat_id, patient_id),
        )

    async def set_patient_status(self, patient_id: int, status: str) -> None:
        await self.db.execute("UPDATE patients SET status = ? WHERE id = ?", (status, patient_id))

    async def set_patient_blocked(self, patient_id: int, now: datetime | None) -> bool:
        """Record that the patient blocked the bot (``now``) or wrote again (None); True if changed."""
        if now is None:
            sql = "UPDATE patients SET blocked_at = NULL WHERE id = ? AND blocked_at IS NOT NULL"
            return await self.db.execute_rowcount(sql, (patient_id,)) == 1
        sql = "UPDATE patients SET blocked_at = ? WHERE id = ? AND blocked_at IS NULL"
        return await self.db.execute_rowcount(sql, (iso(now), patient_id)) == 1

    async def set_patient_preference(self, patient_id: int, name: str, value: bool) -> None:
        if name not in ("read_aloud", "simple_mode"):
            raise ValueError(f"unknown preference {name!r}")
        await self.db.execute(f"UPDATE patients SET {name} = ? WHERE id = ?", (int(value), patient_id))

    # -- voice notes --------------------------------------------------------------------
    async def add_voice_note(
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
        return await self.db.execute(
            "INSERT INTO voice_notes (patient_id, consult_id, duration_s, audio, transcript, status, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (patient_id, consult_id, duration, audio, transcript, status, iso(now)),
        )

    async def voice_note(self, note_id: int) -> Any:
        return await self.db.fetchone("SELECT * FROM voice_notes WHERE id = ?", (note_id,))

    async def set_voice_note_status(self, note_id: int, status: str) -> None:
        await self.db.execute("UPDATE voice_notes SET status = ? WHERE id = ?", (status, note_id))

    async def pending_voice_note(self, patient_id: int) -> Any:
        return await self.db.fetchone(
            "SELECT * FROM voice_notes WHERE patient_id = ? AND status = 'pending' ORDER BY id DESC LIMIT 1",
            (patient_id,),
        )

    async def set_patient_settings(
        self, patient_id: int, *, discreet: bool, quiet_start: str | None, quiet_end: str | None
    ) -> None:
        await self.db.execute(
            "UPDATE patients SET discreet = ?, quiet_start = ?, quiet_end = ? WHERE id = ?",
            (int(discreet), quiet_start, quiet_end, patient_id),
        )

    async def erase_patient(self, patient_id: int, now: datetime) -> None:
        """Remove every piece of the patient's data; keep a tombstone the POH can see."""
        async with self.transaction():
            consults = "SELECT id FROM consults WHERE patient_id = ?"
            await self.db.execute(f"DELETE FROM answers WHERE consult_id IN ({consults})", (patient_id,))
            await self.db.execute("DELETE FROM conversations WHERE patient_id = ?", (patient_id,))
            await self.db.execute("DELETE FROM consents WHERE patient_id = ?", (patient_id,))
            await self.db.execute("DELETE FROM outbox WHERE patient_id = ?", (patient_id,))
            await self.db.execute("DELETE FROM safety_events WHERE patient_id = ?", (patient_id,))
            await self.db.execute("DELETE FROM safety_checks WHERE patient_id = ?", (patient_id,))
            await self.db.execute("DELETE FROM reminders WHERE patient_id = ?", (patient_id,))
            await self.db.execute("DELETE FROM voice_notes WHERE patient_id = ?", (patient_id,))
            goals = "SELECT g.id FROM goals g JOIN plans p ON p.id = g.plan_id WHERE p.patient_id = ?"
            await self.db.execute(f"DELETE FROM actions WHERE goal_id IN ({goals})", (patient_id,))
            await self.db.execute(
                "DELETE FROM goals WHERE plan_id IN (SELECT id FROM plans WHERE patient_id = ?)",
                (patient_id,),
            )
            await self.db.execute("DELETE FROM plans WHERE patient_id = ?", (patient_id,))
            await self.db.execute(
                "UPDATE invites SET used_at = COALESCE(used_at, ?) WHERE patient_id = ?",
                (iso(now), patient_id),
            )
            await self.db.execute("UPDATE consults SET status = 'erased' WHERE patient_id = ?", (patient_id,))
            await self.db.execute(
                "UPDATE patients SET display_name = NULL, telegram_user_id = NULL, "
                "telegram_chat_id = NULL, status = 'erased', erased_at = ? WHERE id = ?",
                (iso(now), patient_id),
            )

    # -- consults ---------------------------------------------------------------------
    async def add_consult(
        self,
        practice_id: int,
        patient_id: int,
        clinician_id: int | None,
        scheduled_at: datetime,
        now: datetime,
    ) -> int:
        return await self.db.execute(
            "INSERT INTO consults (practice_id, patient_id, clinician_id, scheduled_at, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (practice_id, patient_id, clinician_id, iso(scheduled_at), iso(now)),
        )

    @staticmethod
    def _consult(row: Any) -> Consult:
        return Consult(
            row["id"],
            row["practice_id"],
            row["patient_id"],
            row["clinician_id"],
            from_iso(row["scheduled_at"]),
            row["status"],
            _dt(row["completed_at"]),
        )

    async def get_consult(self, consult_id: int) -> Consult | None:
        row = await self.db.fetchone("SELECT * FROM consults WHERE id = ?", (consult_id,))
        return self._consult(row) if row else None

    async def set_consult_status(
        self, consult_id: int, status: str, completed_at: datetime | None = None
    ) -> None:
        await self.db.execute(
            "UPDATE consults SET status = ?, completed_at = COALESCE(?, completed_at) WHERE id = ?",
            (status, iso(completed_at) if completed_at else None, consult_id),
        )

    async def upcoming_consults(self, practice_id: int, since: datetime, limit: int = 20) -> list[Consult]:
        rows = await self.db.fetchall(
            "SELECT * FROM consults WHERE practice_id = ? AND scheduled_at >= ? "
            "ORDER BY scheduled_at, id LIMIT ?",
            (practice_id, iso(since), limit),
        )
        return [self._consult(r) for r in rows]

    async def patient_consults(self, patient_id: int) -> list[Consult]:
        rows = await self.db.fetchall(
            "SELECT * FROM consults WHERE patient_id = ? ORDER BY scheduled_at, id", (patient_id,)
        )
        return [self._consult(r) for r in rows]

    async def practice_consults(self, practice_id: int) -> list[Consult]:
        rows = await self.db.fetchall(
            "SELECT * FROM consults WHERE practice_id = ? ORDER BY scheduled_at, id", (practice_id,)
        )
        return [self._consult(r) for r in rows]

    async def latest_consult(self, patient_id: int) -> Consult | None:
        row = await self.db.fetchone(
            "SELECT * FROM consults WHERE patient_id = ? ORDER BY scheduled_at DESC, id DESC LIMIT 1",
            (patient_id,),
        )
        return self._consult(row) if row else None

    async def previous_consult(self, consult: Consult) -> Consult | None:
        """The patient's most recent earlier consult with a completed intake."""
        row = await self.db.fetchone(
            "SELECT * FROM consults WHERE patient_id = ? AND id != ? AND status = 'ready' "
            "AND scheduled_at < ? ORDER BY scheduled_at DESC LIMIT 1",
            (consult.patient_id, consult.id, iso(consult.scheduled_at)),
        )
        return self._consult(row) if row else None

    # -- invites ----------------------------------------------------------------------
    async def add_invite(
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
    ) -> int:
        return await self.db.execute(
            "INSERT INTO invites (token_hash, kind, practice_id, patient_id, clinician_id, "
            "consult_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (token_hash, kind, practice_id, patient_id, clinician_id, consult_id, iso(expires_at), iso(now)),
        )

    async def invite_by_hash(self, token_hash: str) -> Invite | None:
        row = await self.db.fetchone("SELECT * FROM invites WHERE token_hash = ?", (token_hash,))
        if not row:
            return None
        return Invite(
            row["id"],
            row["kind"],
            row["practice_id"],
            row["patient_id"],
            row["clinician_id"],
            row["consult_id"],
            from_iso(row["expires_at"]),
            _dt(row["used_at"]),
        )

    async def use_invite(self, invite_id: int, now: datetime) -> bool:
        """Mark an invite used; False if it was used already (single use, race-safe)."""
        count = await self.db.execute_rowcount(
            "UPDATE invites SET used_at = ? WHERE id = ? AND used_at IS NULL", (iso(now), invite_id)
        )
        return count == 1

    # -- consent ----------------------------------------------------------------------
    async def add_consent(
        self, patient_id: int, consult_id: int, version: str, given: bool, now: datetime
    ) -> None:
        await self.db.execute(
            "INSERT INTO consents (patient_id, consult_id, version, given, at) VALUES (?, ?, ?, ?, ?)",
            (patient_id, consult_id, version, int(given), iso(now)),
        )

    async def consents(self, patient_id: int) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT consult_id, version, given, at FROM consents WHERE patient_id = ? ORDER BY id",
            (patient_id,),
        )
        return [dict(r) for r in rows]

    # -- conversations ----------------------------------------------------------------
    @staticmethod
    def _conversation(row: Any) -> Conversation:
        return Conversation(
            row["patient_id"],
            row["consult_id"],
            row["flow"],
            json.loads(row["state_json"]),
            row["seq"],
            row["prompted_seq"],
            bool(row["paused"]),
        )

    async def get_conversation(self, patient_id: int) -> Conversation | None:
        row = await self.db.fetchone("SELECT * FROM conversations WHERE patient_id = ?", (patient_id,))
        return self._conversation(row) if row else None

    async def save_conversation(
        self,
        patient_id: int,
        consult_id: int,
        flow: str,
        state: dict[str, Any],
        now: datetime,
        *,
        paused: bool = False,
    ) -> None:
        await self.db.execute(
            "INSERT INTO conversations (patient_id, consult_id, flow, state_json, seq, paused, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(patient_id) DO UPDATE SET "
            "consult_id = excluded.consult_id, flow = excluded.flow, state_json = excluded.state_json, "
            "seq = excluded.seq, paused = excluded.paused, updated_at = excluded.updated_at",
            (
                patient_id,
                consult_id,
                flow,
                json.dumps(state, ensure_ascii=False),
                int(state.get("seq", 0)),
                int(paused),
                iso(now),
            ),
        )

    async def set_paused(self, patient_id: int, paused: bool) -> None:
        await self.db.execute(
            "UPDATE conversations SET paused = ? WHERE patient_id = ?", (int(paused), patient_id)
        )

    async def mark_prompted(self, patient_id: int, seq: int) -> None:
        await self.db.execute(
            "UPDATE conversations SET prompted_seq = MAX(prompted_seq, ?) WHERE patient_id = ?",
            (seq, patient_id),
        )

    async def unprompted_conversations(self) -> list[Conversation]:
        """Conversations whose current question may never have reached the patient."""
        rows = await self.db.fetchall(
            "SELECT c.* FROM conversations c JOIN patients p ON p.id = c.patient_id "
            "WHERE c.prompted_seq < c.seq AND c.paused = 0 AND p.status = 'active'"
        )
        return [self._conversation(r) for r in rows]

    # -- answers ----------------------------------------------------------------------
    async def save_answer(self, consult_id: int, key: str, value: Any, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO answers (consult_id, key, value_json, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(consult_id, key) DO UPDATE SET value_json = excluded.value_json, "
            "updated_at = excluded.updated_at",
            (consult_id, key, json.dumps(value, ensure_ascii=False), iso(now)),
        )

    async def delete_answer(self, consult_id: int, key: str) -> None:
        await self.db.execute("DELETE FROM answers WHERE consult_id = ? AND key = ?", (consult_id, key))

    async def answers(self, consult_id: int) -> dict[str, Any]:
        rows = await self.db.fetchall(
            "SELECT key, value_json FROM answers WHERE consult_id = ? ORDER BY key", (consult_id,)
        )
        return {r["key"]: json.loads(r["value_json"]) for r in rows}

    # -- processed updates ------------------------------------------------------------
    async def is_processed(self, update_id: int) -> bool:
        row = await self.db.fetchone("SELECT 1 FROM processed_updates WHERE update_id = ?", (update_id,))
        return row is not None

    async def mark_processed(self, update_id: int, now: datetime) -> None:
        """The update is applied; in the caller's transaction (the one that records the answer).
        Its inbox row is handled too, and its content forgotten."""
        async with self.db.transaction():
            await self.db.execute(
                "INSERT OR IGNORE INTO processed_updates (update_id, processed_at) VALUES (?, ?)",
                (update_id, iso(now)),
            )
            await self.db.execute(
                "UPDATE inbox SET status = 'handled', payload_json = '{}', handled_at = ? "
                "WHERE update_id = ? AND status = 'pending'",
                (iso(now), update_id),
            )

    # -- safety events ----------------------------------------------------------------
    async def add_safety_event(
        self, patient_id: int | None, consult_id: int | None, flag: str, route: str, now: datetime
    ) -> None:
        await self.db.execute(
            "INSERT INTO safety_events (patient_id, consult_id, flag, route, at) VALUES (?, ?, ?, ?, ?)",
            (patient_id, consult_id, flag, route, iso(now)),
        )

    async def safety_flags(self, consult_id: int) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT DISTINCT flag FROM safety_events WHERE consult_id = ? ORDER BY flag", (consult_id,)
        )
        return [r["flag"] for r in rows]

    async def add_safety_check(
        self,
        patient_id: int | None,
        consult_id: int | None,
        flags: list[str],
        held_seq: int | None,
        now: datetime,
    ) -> int:
        return await self.db.execute(
            "INSERT INTO safety_checks (patient_id, consult_id, flags, held_seq, asked_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (patient_id, consult_id, ",".join(flags), held_seq, iso(now)),
        )

    async def safety_check(self, check_id: int) -> SafetyCheck | None:
        row = await self.db.fetchone("SELECT * FROM safety_checks WHERE id = ?", (check_id,))
        return _safety_check(row) if row else None

    async def answer_safety_check(self, check_id: int, answer: str, now: datetime) -> bool:
        """Record the answer once; False when it was answered already (a double tap)."""
        count = await self.db.execute_rowcount(
            "UPDATE safety_checks SET answer = ?, answered_at = ? WHERE id = ? AND answer IS NULL",
            (answer, iso(now), check_id),
        )
        return count == 1

    async def open_safety_check(self, patient_id: int, since: datetime) -> SafetyCheck | None:
        """The latest unanswered check asked since ``since``."""
        row = await self.db.fetchone(
            "SELECT * FROM safety_checks WHERE patient_id = ? AND answer IS NULL AND asked_at >= ? "
            "ORDER BY id DESC LIMIT 1",
            (patient_id, iso(since)),
        )
        return _safety_check(row) if row else None

    async def safety_checks(self, consult_id: int) -> list[SafetyCheck]:
        rows = await self.db.fetchall(
            "SELECT * FROM safety_checks WHERE consult_id = ? ORDER BY id", (consult_id,)
        )
        return [_safety_check(r) for r in rows]

    # -- outbox -----------------------------------------------------------------------
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

    async def due_outbox(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
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

    async def outbox_sent(self, item_id: int, message_id: int | None, now: datetime) -> None:
        await self.db.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, telegram_message_id = ?, "
            "attempts = attempts + 1 WHERE id = ?",
            (iso(now), message_id, item_id),
        )

    async def outbox_retry(self, item_id: int, due_at: datetime, *, give_up: bool) -> None:
        await self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, due_at = ?, status = ? WHERE id = ?",
            (iso(due_at), "failed" if give_up else "pending", item_id),
        )

    async def outbox_parts_sent(self, item_id: int, parts: int) -> None:
        """A multi-part row: the first ``parts`` messages went out."""
        await self.db.execute(
            "UPDATE outbox SET payload_json = json_set(payload_json, '$._parts_sent', ?) WHERE id = ?",
            (parts, item_id),
        )

    async def outbox_cancel(self, item_id: int) -> None:
        await self.db.execute("UPDATE outbox SET status = 'cancelled' WHERE id = ?", (item_id,))

    async def outbox_rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, kind, chat_id, status, attempts, consult_id, payload_json FROM outbox"
        rows = await (self.db.fetchall(sql + " WHERE kind = ?", (kind,)) if kind else self.db.fetchall(sql))
        return [{**dict(r), "payload": json.loads(r["payload_json"])} for r in rows]


def _safety_check(row: Any) -> SafetyCheck:
    return SafetyCheck(
        id=row["id"],
        patient_id=row["patient_id"],
        consult_id=row["consult_id"],
        flags=tuple(f for f in row["flags"].split(",") if f),
        held_seq=row["held_seq"],
        asked_at=from_iso(row["asked_at"]),
        answer=row["answer"],
    )
