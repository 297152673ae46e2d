"""The safety net's records: routes taken and direct checks asked. SQL for them lives here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.clock import from_iso, iso
from bot.storage.base import SqliteRepository
from bot.storage.models import SafetyCheck


class SafetyRepository(SqliteRepository):
    """Safety events (a route shown) and checks (a yes/no question after risk words)."""

    async def add_event(
        self, patient_id: int | None, consult_id: int | None, flag: str, route: str, now: datetime
    ) -> None:
        await self.db.execute_later(
            "INSERT INTO safety_events (patient_id, consult_id, flag, route, at) VALUES (?, ?, ?, ?, ?)",
            (patient_id, consult_id, flag, route, iso(now)),
        )

    async def flags(self, consult_id: int) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT DISTINCT flag FROM safety_events WHERE consult_id = ? ORDER BY flag", (consult_id,)
        )
        return [r["flag"] for r in rows]

    async def add_check(
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

    async def check(self, check_id: int) -> SafetyCheck | None:
        row = await self.db.fetchone("SELECT * FROM safety_checks WHERE id = ?", (check_id,))
        return _safety_check(row) if row else None

    async def answer_check(self, check_id: int, answer: str, now: datetime) -> bool:
        """Record the answer once; False when it was answered already (a double tap)."""
        count = await self.db.execute_rowcount(
            "UPDATE safety_checks SET answer = ?, answered_at = ? WHERE id = ? AND answer IS NULL",
            (answer, iso(now), check_id),
        )
        return count == 1

    async def open_check(self, patient_id: int, since: datetime) -> SafetyCheck | None:
        """The latest unanswered check asked since ``since``."""
        row = await self.db.fetchone(
            "SELECT * FROM safety_checks WHERE patient_id = ? AND answer IS NULL AND asked_at >= ? "
            "ORDER BY id DESC LIMIT 1",
            (patient_id, iso(since)),
        )
        return _safety_check(row) if row else None

    async def checks(self, consult_id: int) -> list[SafetyCheck]:
        rows = await self.db.fetchall(
            "SELECT * FROM safety_checks WHERE consult_id = ? ORDER BY id", (consult_id,)
        )
        return [_safety_check(r) for r in rows]


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
