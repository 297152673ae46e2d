"""Consults, invites, consents and intake answers. SQL for them lives here and nowhere else."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.clock import from_iso, iso
from bot.storage.base import SqliteRepository, dt_or_none
from bot.storage.models import Consult, ConsultStatus, Invite


class ConsultRepository(SqliteRepository):
    """Consults: when, with whom, and how far the intake is."""

    async def add(
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

    async def get(self, consult_id: int) -> Consult | None:
        row = await self.db.fetchone("SELECT * FROM consults WHERE id = ?", (consult_id,))
        return _consult(row) if row else None

    async def set_status(self, consult_id: int, status: str, completed_at: datetime | None = None) -> None:
        await self.db.execute_later(
            "UPDATE consults SET status = ?, completed_at = COALESCE(?, completed_at) WHERE id = ?",
            (status, iso(completed_at) if completed_at else None, consult_id),
        )

    async def upcoming(self, practice_id: int, since: datetime, limit: int = 20) -> list[Consult]:
        rows = await self.db.fetchall(
            "SELECT * FROM consults WHERE practice_id = ? AND scheduled_at >= ? "
            "ORDER BY scheduled_at, id LIMIT ?",
            (practice_id, iso(since), limit),
        )
        return [_consult(r) for r in rows]

    async def of_patient(self, patient_id: int) -> list[Consult]:
        rows = await self.db.fetchall(
            "SELECT * FROM consults WHERE patient_id = ? ORDER BY scheduled_at, id", (patient_id,)
        )
        return [_consult(r) for r in rows]

    async def of_practice(self, practice_id: int) -> list[Consult]:
        rows = await self.db.fetchall(
            "SELECT * FROM consults WHERE practice_id = ? ORDER BY scheduled_at, id", (practice_id,)
        )
        return [_consult(r) for r in rows]

    async def latest(self, patient_id: int) -> Consult | None:
        row = await self.db.fetchone(
            "SELECT * FROM consults WHERE patient_id = ? ORDER BY scheduled_at DESC, id DESC LIMIT 1",
            (patient_id,),
        )
        return _consult(row) if row else None

    async def previous(self, consult: Consult) -> Consult | None:
        """The patient's most recent earlier consult with a completed intake."""
        row = await self.db.fetchone(
            "SELECT * FROM consults WHERE patient_id = ? AND id != ? AND status = 'ready' "
            "AND scheduled_at < ? ORDER BY scheduled_at DESC LIMIT 1",
            (consult.patient_id, consult.id, iso(consult.scheduled_at)),
        )
        return _consult(row) if row else None


class InviteRepository(SqliteRepository):
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
    ) -> int:
        return await self.db.execute(
            "INSERT INTO invites (token_hash, kind, practice_id, patient_id, clinician_id, "
            "consult_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (token_hash, kind, practice_id, patient_id, clinician_id, consult_id, iso(expires_at), iso(now)),
        )

    async def by_hash(self, token_hash: str) -> Invite | None:
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
            dt_or_none(row["used_at"]),
        )

    async def use(self, invite_id: int, now: datetime) -> bool:
        """Mark an invite used; False if it was used already (single use, race-safe)."""
        count = await self.db.execute_rowcount(
            "UPDATE invites SET used_at = ? WHERE id = ? AND used_at IS NULL", (iso(now), invite_id)
        )
        return count == 1


class ConsentRepository(SqliteRepository):
    """Consent given or withdrawn, per version of the consent text."""

    async def add(self, patient_id: int, consult_id: int, version: str, given: bool, now: datetime) -> None:
        await self.db.execute_later(
            "INSERT INTO consents (patient_id, consult_id, version, given, at) VALUES (?, ?, ?, ?, ?)",
            (patient_id, consult_id, version, int(given), iso(now)),
        )

    async def of_patient(self, patient_id: int) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT consult_id, version, given, at FROM consents WHERE patient_id = ? ORDER BY id",
            (patient_id,),
        )
        return [dict(r) for r in rows]


class AnswerRepository(SqliteRepository):
    """A consult's intake answers, one row per question key."""

    async def save(self, consult_id: int, key: str, value: Any, now: datetime) -> None:
        await self.db.execute_later(
            "INSERT INTO answers (consult_id, key, value_json, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(consult_id, key) DO UPDATE SET value_json = excluded.value_json, "
            "updated_at = excluded.updated_at",
            (consult_id, key, json.dumps(value, ensure_ascii=False), iso(now)),
        )

    async def delete(self, consult_id: int, key: str) -> None:
        await self.db.execute_later("DELETE FROM answers WHERE consult_id = ? AND key = ?", (consult_id, key))

    async def of_consult(self, consult_id: int) -> dict[str, Any]:
        rows = await self.db.fetchall(
            "SELECT key, value_json FROM answers WHERE consult_id = ? ORDER BY key", (consult_id,)
        )
        return {r["key"]: json.loads(r["value_json"]) for r in rows}


def _consult(row: Any) -> Consult:
    return Consult(
        row["id"],
        row["practice_id"],
        row["patient_id"],
        row["clinician_id"],
        from_iso(row["scheduled_at"]),
        ConsultStatus(row["status"]),
        dt_or_none(row["completed_at"]),
    )
