"""What ``python -m bot health`` and ``GET /healthz`` ask of the database: a test write, the schema
level, the scheduler's last tick and the outbox backlog."""

from __future__ import annotations

from datetime import datetime

from bot.clock import iso
from bot.storage.base import SqliteRepository, dt_or_none
from bot.storage.db import known_migrations


class HealthRepository(SqliteRepository):
    """Heartbeats (table ``heartbeats``) and the figures a monitor needs; no patient data."""

    async def beat(self, name: str, at: datetime) -> None:
        """Record a sign of life (also the health check's own test write)."""
        await self.db.execute(
            "INSERT INTO heartbeats (name, at) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET at = excluded.at",
            (name, iso(at)),
        )

    async def last_beat(self, name: str) -> datetime | None:
        row = await self.db.fetchone("SELECT at FROM heartbeats WHERE name = ?", (name,))
        return dt_or_none(row["at"]) if row else None

    async def schema(self) -> tuple[list[int], list[int]]:
        """(versions applied to this database, versions this code knows)."""
        table = await self.db.fetchone(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        )
        rows = (
            await self.db.fetchall("SELECT version FROM schema_migrations ORDER BY version") if table else []
        )
        return [int(r["version"]) for r in rows], known_migrations()

    async def outbox_backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """Pending outbox rows that are due (count) and the due moment of the oldest of them."""
        row = await self.db.fetchone(
            "SELECT COUNT(*) AS n, MIN(due_at) AS oldest FROM outbox "
            "WHERE status = 'pending' AND due_at <= ?",
            (iso(now),),
        )
        if row is None:
            return 0, None
        return int(row["n"]), dt_or_none(row["oldest"])
