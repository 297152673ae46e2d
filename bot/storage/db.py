"""The SQLite connection: WAL mode, migrations at start-up, transactions."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bot.storage import filelock, identity

log = logging.getLogger(__name__)


Statement = tuple[str, tuple[Any, ...]]
_BEGIN: Statement = ("BEGIN IMMEDIATE", ())


class _Tx:
    """The open write transaction of a task: BEGIN is sent with its first job, and writes whose
    result nobody needs (``execute_later``) wait to go with the next job (at the latest COMMIT)."""

    __slots__ = ("begun", "owner", "pending")

    def __init__(self) -> None:
        self.begun = False
        self.pending: list[Statement] = []
        # A task started inside the block inherits the context variable, not the transaction.
        self.owner = asyncio.current_task()


_current_tx: contextvars.ContextVar[_Tx | None] = contextvars.ContextVar("tx", default=None)


def _active() -> _Tx | None:
    """The open transaction of the running task (not one of the task that started this one)."""
    tx = _current_tx.get()
    return tx if tx is not None and tx.owner is asyncio.current_task() else None


def known_migrations() -> list[int]:
    """The migration versions this code knows (the newest is the schema it expects)."""
    return [version for version, _, _ in _migrations()]


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


SLOW_READ_MS = 25.0  # a read on the event loop that takes longer is logged (by its first words)


class Database:
    """One writer connection (writes serialised, ``BEGIN IMMEDIATE``) and one reader connection.

    Reads outside a transaction go to the reader, which sees only committed rows (WAL snapshot):
    a task never reads what another task may still roll back. Each read runs to its end at once,
    so every read starts a fresh snapshot and sees every commit before it. The reader runs on the
    event loop's own thread: the bot's reads are indexed lookups of tens of microseconds, and in
    WAL mode a reader never waits for a writer, while a hop to a connection thread and back costs
    more than the read (``python -m bot bench load``: 200 patients 160 -> 194 answers/s). Writes do
    wait for locks (another process), so they stay on the writer's thread. Reads inside a
    transaction use the writer, so a transaction sees its own writes. An in-memory database has
    the writer only.
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.reader: sqlite3.Connection | None = None
        self.held: filelock.FileLock | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path, *, migrate: bool = True) -> Database:
        """Open (and create) the file, holding its lock file while open (``filelock``: a restore
        refuses while it is held); ``migrate=False`` leaves the schema as it is (``health``)."""
        held = None
        if str(path) != ":memory:":
            held = await filelock.hold_shared(Path(path))
        try:
            conn = await _connect(str(path))
        except BaseException:
            if held is not None:
                held.release()
            raise
        db = cls(conn)
        db.held = held
        if migrate:
            try:
                await db.migrate()
            except BaseException:
                await db.close()
                raise
        if str(path) != ":memory:":
            # Only ever used from the event loop's thread (check_same_thread is about where it was made).
            db.reader = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=2.0)
            db.reader.row_factory = sqlite3.Row
            db.reader.execute("PRAGMA query_only=ON")
        return db

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        await self.conn.close()
        if self.held is not None:
            self.held.release()
            self.held = None

    async def trace(self, callback: Callable[[str], None] | None) -> None:
        """Call ``callback`` with every statement either connection runs (None: stop). For tests and
        debugging only: statements carry their parameters, so never log them."""
        await self.conn._execute(self.conn._conn.set_trace_callback, callback)
        if self.reader is not None:
            self.reader.set_trace_callback(callback)

    async def migrate(self) -> list[int]:
        """Apply pending migrations in one write transaction: a second process starting on the same
        file waits for the first (``BEGIN IMMEDIATE``), then finds nothing left to do."""
        await self.conn.execute(f"PRAGMA busy_timeout={MIGRATION_WAIT_MS}")
        applied: list[tuple[int, str]] = []
        try:
            async with self.transaction():
                await self.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                rows = await self.fetchall("SELECT version FROM schema_migrations")
                done = {r["version"] for r in rows}
                for version, name, sql in _migrations():
                    if version in done:
                        continue
                    for statement in _split_sql(sql):
                        await self.execute(statement)
                    await self.execute(
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
        """A write transaction. Re-entrant: an inner block joins the outer one. ``BEGIN IMMEDIATE``
        goes with the first statement and ``COMMIT`` is one job: every job is a hop to the writer's
        thread, and the lock is held across them."""
        if _active() is not None:
            yield
            return
        async with self._lock:
            tx = _Tx()
            token = _current_tx.set(tx)
            try:
                yield
                if tx.begun or tx.pending:
                    # The deferred writes and COMMIT in one job; a failing one raises here.
                    await self.conn._execute(_finish, self.conn, self._lead(), "COMMIT")
            except BaseException:
                identity.forget_all()  # rows read inside may never have been committed
                tx.pending.clear()
                if tx.begun:
                    await self.conn._execute(_finish, self.conn, [], "ROLLBACK")
                raise
            finally:
                _current_tx.reset(token)

    def _lead(self) -> list[Statement]:
        """Inside a transaction: what this job must run before its own statement (BEGIN in the
        first job, then the deferred writes, in order)."""
        tx = _active()
        if tx is None:
            return []
        lead = [] if tx.begun else [_BEGIN]
        tx.begun = True
        lead += tx.pending
        tx.pending = []
        return lead

    async def execute_later(self, sql: str, params: Iterable[Any] = ()) -> None:
        """A write whose result nobody needs. In a transaction it goes with the transaction's next
        job (a read, a write, or COMMIT), so one answer's writes cost one hop to the writer's
        thread instead of one each; an error in it fails the transaction there. Outside a
        transaction it runs at once."""
        tx = _active()
        if tx is None:
            await self.execute(sql, params)
        else:
            tx.pending.append((sql, tuple(params)))

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run a write; returns lastrowid. Joins the current transaction or makes its own."""
        rowid, _ = await self._write(sql, tuple(params))
        return rowid

    async def execute_rowcount(self, sql: str, params: Iterable[Any] = ()) -> int:
        _, count = await self._write(sql, tuple(params))
        return count

    async def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        """Many rows of one statement (bulk loads): in the current transaction or one of its own."""
        async with self.transaction():
            await self.conn._execute(_run_many, self.conn, sql, [tuple(r) for r in rows], self._lead())

    async def _write(self, sql: str, params: tuple[Any, ...]) -> tuple[int, int]:
        """One job on the writer's thread: the statement (and, on its own, its commit). The lock is
        held for that one job only: under load every hop to the thread waits for a turn of the
        event loop, and four hops per write (BEGIN, statement, cursor, COMMIT) made the writer the
        bottleneck of the whole bot (``python -m bot bench load``)."""
        if _active() is not None:
            return await self.conn._execute(_run_write, self.conn, sql, params, self._lead())
        async with self._lock:
            # Autocommit: SQLite wraps the single statement in its own transaction.
            return await self.conn._execute(_run_write, self.conn, sql, params, [])

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        # The statement runs to its end before anything else: a statement left open between two
        # awaits (another task's read interleaved) would keep the reader's WAL snapshot open, and
        # later reads would miss rows committed since (a sent row read as pending).
        # Inside a transaction the writer reads, so the transaction sees its own writes.
        if _active() is not None:
            return await self.conn._execute(_run_read, self.conn, sql, tuple(params), self._lead())
        if self.reader is None:  # in memory: the writer is the only connection
            return await self.conn._execute(_run_read, self.conn, sql, tuple(params), [])
        start = time.perf_counter()
        rows = self.reader.execute(sql, tuple(params)).fetchall()
        took = (time.perf_counter() - start) * 1000
        if took > SLOW_READ_MS:
            log.warning("a read took %.0f ms on the event loop: %s ...", took, " ".join(sql.split()[:4]))
        await asyncio.sleep(0)  # still a point where other tasks run (a loop of reads must not starve them)
        return rows


# On the connection's thread (aiosqlite runs one job at a time there; ``_execute`` and ``_conn`` are
# its private API, hence the upper bound in pyproject.toml). ``lead``: BEGIN and deferred writes of
# the task's transaction, run first in the same job.
def _raw(conn: aiosqlite.Connection, lead: list[Statement]) -> sqlite3.Connection:
    raw = conn._conn
    for sql, params in lead:
        raw.execute(sql, params).close()
    return raw


def _run_write(
    conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...], lead: list[Statement]
) -> tuple[int, int]:
    cursor = _raw(conn, lead).execute(sql, params)
    try:
        return cursor.lastrowid or 0, cursor.rowcount
    finally:
        cursor.close()


def _run_many(
    conn: aiosqlite.Connection, sql: str, rows: list[tuple[Any, ...]], lead: list[Statement]
) -> None:
    _raw(conn, lead).executemany(sql, rows).close()


def _run_read(
    conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...], lead: list[Statement]
) -> list[Any]:
    cursor = _raw(conn, lead).execute(sql, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def _finish(conn: aiosqlite.Connection, lead: list[Statement], sql: str) -> None:
    """The deferred writes, then COMMIT or ROLLBACK when a transaction is open (a failed BEGIN
    leaves none)."""
    _raw(conn, lead)
    if conn._conn.in_transaction:
        conn._conn.execute(sql)


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
