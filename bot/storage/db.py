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


MIGRATION_WAIT_MS = 60_000  # another process migrating the same file: wait this long for it


async def _connect(path: str) -> aiosqlite.Connection:
    pending = aiosqlite.connect(path, isolation_level=None)
    # A crash elsewhere must not leave the process hanging on the connection's worker thread.
    pending._thread.daemon = True
    conn = await pending
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=5000")
    return conn


class Database:
    """One writer connection (writes serialised, ``BEGIN IMMEDIATE``) and one reader connection.

    Reads outside a transaction go to the reader, which sees only committed rows (WAL snapshot):
    a task never reads what another task may still roll back. Each read runs to its end in one
    job on the reader's thread, so every read starts a fresh snapshot and sees every commit before
    it. Reads inside a transaction use the writer, so a transaction sees its own writes. An
    in-memory database has the writer only.
    """

    def __init__(self, conn: aiosqlite.Connection, reader: aiosqlite.Connection | None = None) -> None:
        self.conn = conn
        self.reader = reader or conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> Database:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await _connect(str(path))
        db = cls(conn)
        await db.migrate()
        if str(path) != ":memory:":
            db.reader = await _connect(str(path))
            await db.reader.execute("PRAGMA query_only=ON")
        return db

    async def close(self) -> None:
        if self.reader is not self.conn:
            await self.reader.close()
        await self.conn.close()

    async def migrate(self) -> list[int]:
        """Apply pending migrations in one write transaction: a second process starting on the same
        file waits for the first (``BEGIN IMMEDIATE``), then finds nothing left to do."""
        await self.conn.execute(f"PRAGMA busy_timeout={MIGRATION_WAIT_MS}")
        applied: list[tuple[int, str]] = []
        try:
            async with self.transaction():
                await self.conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                rows = await self.fetchall("SELECT version FROM schema_migrations")
                done = {r["version"] for r in rows}
                for version, name, sql in _migrations():
                    if version in done:
                        continue
                    for statement in _split_sql(sql):
                        await self.conn.execute(statement)
                    await self.conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        (version, name, datetime.now(UTC).isoformat(timespec="seconds")),
                    )
                    applied.append((version, name))
        finally:
            await self.conn.execute("PRAGMA busy_timeout=5000")
        for _, name in applied:
            log.info("applied migration %s", name)
        return [version for version, _ in applied]

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

    def _read_conn(self) -> aiosqlite.Connection:
        return self.conn if _in_transaction.get() else self.reader

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        # One job on the connection's thread runs the statement to its end: a statement left open
        # between two awaits (another task's read interleaved) would keep the reader's WAL snapshot
        # open, and later reads would miss rows committed since (a sent row read as pending).
        return list(await self._read_conn().execute_fetchall(sql, tuple(params)))


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
