"""Practices, clinicians, patients and their voice notes. SQL for them lives here and nowhere else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.clock import iso
from bot.storage import identity
from bot.storage.base import SqliteRepository
from bot.storage.models import Clinician, Patient, PatientStatus, Practice


class PracticeRepository(SqliteRepository):
    """Practices (the tenants)."""

    async def add(self, name: str, now: datetime) -> int:
        return await self.db.execute(
            "INSERT INTO practices (name, created_at) VALUES (?, ?)", (name, iso(now))
        )

    async def get(self, practice_id: int) -> Practice | None:
        found, practice = identity.lookup(("practice", practice_id))
        if not found:
            row = await self.db.fetchone("SELECT id, name FROM practices WHERE id = ?", (practice_id,))
            practice = Practice(row["id"], row["name"]) if row else None
            identity.remember(("practice", practice_id), practice)
        return practice

    async def all(self) -> list[Practice]:
        rows = await self.db.fetchall("SELECT id, name FROM practices ORDER BY id")
        return [Practice(r["id"], r["name"]) for r in rows]


class ClinicianRepository(SqliteRepository):
    """POHs and GPs, linked to their Telegram chat."""

    async def add(self, practice_id: int, name: str, now: datetime) -> int:
        return await self.db.execute(
            "INSERT INTO clinicians (practice_id, display_name, created_at) VALUES (?, ?, ?)",
            (practice_id, name, iso(now)),
        )

    async def get(self, clinician_id: int) -> Clinician | None:
        row = await self.db.fetchone("SELECT * FROM clinicians WHERE id = ?", (clinician_id,))
        return _clinician(row) if row else None

    async def by_telegram(self, user_id: int) -> Clinician | None:
        found, clinician = identity.lookup(("clinician_of_user", user_id))
        if not found:
            row = await self.db.fetchone(
                "SELECT * FROM clinicians WHERE telegram_user_id = ? AND active = 1", (user_id,)
            )
            clinician = _clinician(row) if row else None
            identity.remember(("clinician_of_user", user_id), clinician)
        return clinician

    async def link(self, clinician_id: int, user_id: int, chat_id: int) -> None:
        identity.forget_all()
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
        linked = [_clinician(r) for r in rows]
        named = [c for c in linked if c.id == clinician_id]
        return named or linked


class PatientRepository(SqliteRepository):
    """Patients, their settings, and erasure of everything about them."""

    async def add(self, practice_id: int, display_name: str | None, now: datetime) -> int:
        return await self.db.execute(
            "INSERT INTO patients (practice_id, display_name, created_at) VALUES (?, ?, ?)",
            (practice_id, display_name, iso(now)),
        )

    # Reads go through the update's identity map (``bot.storage.identity``): one read of the patient
    # per update. Every write below forgets what the map holds.
    async def get(self, patient_id: int, *, fresh: bool = False) -> Patient | None:
        """``fresh``: read SQLite even inside a scope (after waiting for the patient's lock, where
        another task may have changed the row); the map keeps what it read."""
        found, patient = (False, None) if fresh else identity.lookup(("patient", patient_id))
        if not found:
            row = await self.db.fetchone("SELECT * FROM patients WHERE id = ?", (patient_id,))
            patient = self._remember(_patient(row) if row else None, ("patient", patient_id))
        return patient

    async def by_telegram(self, user_id: int) -> Patient | None:
        found, patient = identity.lookup(("patient_of_user", user_id))
        if not found:
            row = await self.db.fetchone(
                "SELECT * FROM patients WHERE telegram_user_id = ? AND status != 'erased'", (user_id,)
            )
            patient = self._remember(_patient(row) if row else None, ("patient_of_user", user_id))
        return patient

    @staticmethod
    def _remember(patient: Patient | None, key: identity.Key) -> Patient | None:
        identity.remember(key, patient)
        if patient is not None:
            identity.remember(("patient", patient.id), patient)
        return patient

    async def _change(self, sql: str, params: tuple[Any, ...]) -> int:
        identity.forget_all()
        return await self.db.execute_rowcount(sql, params)

    async def link(self, patient_id: int, user_id: int, chat_id: int) -> None:
        await self._change(
            "UPDATE patients SET telegram_user_id = ?, telegram_chat_id = ?, status = 'active' WHERE id = ?",
            (user_id, chat_id, patient_id),
        )

    async def set_status(self, patient_id: int, status: str) -> None:
        await self._change("UPDATE patients SET status = ? WHERE id = ?", (status, patient_id))

    async def set_blocked(self, patient_id: int, now: datetime | None) -> bool:
        """Record that the patient blocked the bot (``now``) or wrote again (None); True if changed."""
        if now is None:
            sql = "UPDATE patients SET blocked_at = NULL WHERE id = ? AND blocked_at IS NOT NULL"
            return await self._change(sql, (patient_id,)) == 1
        sql = "UPDATE patients SET blocked_at = ? WHERE id = ? AND blocked_at IS NULL"
        return await self._change(sql, (iso(now), patient_id)) == 1

    async def set_preference(self, patient_id: int, name: str, value: bool) -> None:
        if name not in ("read_aloud", "simple_mode"):
            raise ValueError(f"unknown preference {name!r}")
        await self._change(f"UPDATE patients SET {name} = ? WHERE id = ?", (int(value), patient_id))

    async def set_settings(
        self, patient_id: int, *, discreet: bool, quiet_start: str | None, quiet_end: str | None
    ) -> None:
        await self._change(
            "UPDATE patients SET discreet = ?, quiet_start = ?, quiet_end = ? WHERE id = ?",
            (int(discreet), quiet_start, quiet_end, patient_id),
        )

    async def erase(self, patient_id: int, now: datetime) -> None:
        """Remove every piece of the patient's data; keep a tombstone the POH can see."""
        identity.forget_all()
        async with self.db.transaction():
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
            # A POH's reason to keep the data longer is about the patient too.
            await self.db.execute("DELETE FROM retention_holds WHERE patient_id = ?", (patient_id,))
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


class VoiceNoteRepository(SqliteRepository):
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
    ) -> int:
        return await self.db.execute(
            "INSERT INTO voice_notes (patient_id, consult_id, duration_s, audio, transcript, status, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (patient_id, consult_id, duration, audio, transcript, status, iso(now)),
        )

    async def get(self, note_id: int) -> Any:
        return await self.db.fetchone("SELECT * FROM voice_notes WHERE id = ?", (note_id,))

    async def set_status(self, note_id: int, status: str) -> None:
        await self.db.execute("UPDATE voice_notes SET status = ? WHERE id = ?", (status, note_id))

    async def pending(self, patient_id: int) -> Any:
        return await self.db.fetchone(
            "SELECT * FROM voice_notes WHERE patient_id = ? AND status = 'pending' ORDER BY id DESC LIMIT 1",
            (patient_id,),
        )


def _clinician(row: Any) -> Clinician:
    return Clinician(
        row["id"],
        row["practice_id"],
        row["display_name"],
        row["telegram_user_id"],
        row["telegram_chat_id"],
        bool(row["active"]),
    )


def _patient(row: Any) -> Patient:
    return Patient(
        row["id"],
        row["practice_id"],
        row["display_name"],
        row["telegram_user_id"],
        row["telegram_chat_id"],
        PatientStatus(row["status"]),
        bool(row["discreet"]),
        row["quiet_start"],
        row["quiet_end"],
        row["blocked_at"] is not None,
        None if row["read_aloud"] is None else bool(row["read_aloud"]),
        None if row["simple_mode"] is None else bool(row["simple_mode"]),
    )
