"""The SQLite connection: WAL mode, migrations at start-up, transactions."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar("in_tx", default=False)


def _migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("bot.storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class Database:
    """One aiosqlite connection shared by the process; writes are serialised."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> Database:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        pending = aiosqlite.connect(str(path), isolation_level=None)
        # A crash elsewhere must not leave the process hanging on the connection's worker thread.
        pending._thread.daemon = True
        conn = await pending
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        db = cls(conn)
        await db.migrate()
        return db

    async def close(self) -> None:
        await self.conn.close()

    async def migrate(self) -> list[int]:
        await self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        rows = await self.fetchall("SELECT version FROM schema_migrations")
        done = {r["version"] for r in rows}
        applied = []
        for version, name, sql in _migrations():
            if version in done:
                continue
            async with self.transaction():
                for statement in _split_sql(sql):
                    await self.conn.execute(statement)
                await self.conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, datetime.now(UTC).isoformat(timespec="seconds")),
                )
            log.info("applied migration %s", name)
            applied.append(version)
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A write transaction. Re-entrant: an inner block joins the outer one."""
        if _in_transaction.get():
            yield
            return
        async with self._lock:
            token = _in_transaction.set(True)
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")
            finally:
                _in_transaction.reset(token)

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run a write; returns lastrowid. Joins the current transaction or makes its own."""
        async with self.transaction():
            cursor = await self.conn.execute(sql, tuple(params))
            rowid = cursor.lastrowid or 0
            await cursor.close()
            return rowid

    async def execute_rowcount(self, sql: str, params: Iterable[Any] = ()) -> int:
        async with self.transaction():
            cursor = await self.conn.execute(sql, tuple(params))
            count = cursor.rowcount
            await cursor.close()
            return count

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        async with self.conn.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self.conn.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())


def _split_sql(sql: str) -> list[str]:
    """Statements of a migration file (triggers with BEGIN ... END stay whole). Comments are
    dropped; string literals hold no ``--``."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    statements, current = [], ""
    for piece in "\n".join(lines).split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n;"):
                statements.append(current.strip().rstrip(";").strip())
            current = ""
    return statements
