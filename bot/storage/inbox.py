"""Inbox storage: raw updates committed before they are confirmed to Telegram. SQL lives here."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot.clock import Clock, iso
from bot.storage.base import SqliteRepository
from bot.storage.db import Database
from bot.storage.models import InboxRow

KEEP_HANDLED = timedelta(days=2)  # handled rows (without content) kept this long, for the offset


class InboxRepository(SqliteRepository):
    def __init__(self, db: Database, clock: Clock) -> None:
        super().__init__(db)
        self.clock = clock

    # Handled rows are marked by ``UpdateRepository.mark_processed``, in the transaction of the answer.

    async def store(self, updates: list[tuple[int, int | None, dict[str, Any]]]) -> list[InboxRow]:
        """Commit a batch in one transaction; returns the rows that were new (a batch seen again
        after a crash before its offset was confirmed is not stored twice)."""
        now = iso(self.clock.now())
        new: list[InboxRow] = []
        async with self.db.transaction():
            for update_id, chat, payload in updates:
                count = await self.db.execute_rowcount(
                    "INSERT OR IGNORE INTO inbox (update_id, chat_key, payload_json, received_at) "
                    "VALUES (?, ?, ?, ?)",
                    (update_id, chat, json.dumps(payload, ensure_ascii=False), now),
                )
                if count:
                    new.append(InboxRow(update_id, chat, payload))
        return new

    async def pending(self) -> list[InboxRow]:
        rows = await self.db.fetchall(
            "SELECT update_id, chat_key, payload_json FROM inbox WHERE status = 'pending' ORDER BY update_id"
        )
        return [InboxRow(r["update_id"], r["chat_key"], json.loads(r["payload_json"])) for r in rows]

    async def next_offset(self) -> int:
        row = await self.db.fetchone("SELECT MAX(update_id) AS last FROM inbox")
        return int(row["last"]) + 1 if row is not None and row["last"] is not None else 0

    async def failed(self, update_id: int, reason: str) -> None:
        await self.db.execute(
            "UPDATE inbox SET status = 'failed', payload_json = '{}', reason = ?, handled_at = ? "
            "WHERE update_id = ?",
            (reason, iso(self.clock.now()), update_id),
        )

    async def prune(self) -> int:
        """Old handled and failed rows go; the newest row stays (it holds the offset)."""
        return await self.db.execute_rowcount(
            "DELETE FROM inbox WHERE status != 'pending' AND handled_at < ? "
            "AND update_id < (SELECT MAX(update_id) FROM inbox)",
            (iso(self.clock.now() - KEEP_HANDLED),),
        )

    async def counts(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT status, COUNT(*) AS n FROM inbox GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}
