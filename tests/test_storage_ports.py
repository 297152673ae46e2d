"""The storage ports hold: every SQLite repository implements its Protocol exactly, the unit of work
carries every aggregate, and nothing outside storage and the composition root touches SQLite, so a
PostgreSQL implementation can follow without changing a service."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

from bot.storage import ports
from bot.storage.db import Database
from bot.storage.store import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
# Who may build or reach the SQLite side: storage itself, the composition root, the CLI and
# benchmarks (which create and fill files), and the test helpers.
MAY_USE_SQLITE = ("bot/storage/", "bot/app.py", "bot/cli.py", "bot/bench.py", "bot/testing/")
ALLOWED_STORAGE_MODULES = {"bot.storage.models", "bot.storage.ports"}


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def _aggregates() -> dict[str, type]:
    """The unit of work's repositories: its read-only properties and the Protocol each returns."""
    found = {}
    for name, member in vars(ports.UnitOfWork).items():
        if isinstance(member, property) and member.fget is not None:
            hint = typing.get_type_hints(member.fget, vars(ports)).get("return")
            if isinstance(hint, type):
                found[name] = hint
    return found


async def _store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(await Database.open(tmp_path / "ports.sqlite3"))


def test_the_unit_of_work_names_every_aggregate_the_issue_lists() -> None:
    needed = {"patients", "consults", "conversations", "answers", "outbox", "inbox", "plans", "reminders"}
    assert needed <= set(_aggregates())


@pytest.mark.parametrize("attribute", sorted(_aggregates()))
async def test_each_sqlite_repository_implements_its_protocol_exactly(tmp_path: Path, attribute: str) -> None:
    store = await _store(tmp_path)
    try:
        protocol = _aggregates()[attribute]
        implementation = type(getattr(store, attribute))
        wanted = _public_methods(protocol)
        offered = _public_methods(implementation)
        assert wanted, f"{protocol.__name__} declares no methods"
        # Same names both ways: a method services could reach only on SQLite is a leak.
        assert set(offered) == set(wanted), (protocol.__name__, set(offered) ^ set(wanted))
        for name, signature in wanted.items():
            assert str(offered[name]) == str(signature), f"{implementation.__name__}.{name}"
            assert inspect.iscoroutinefunction(getattr(implementation, name)) == inspect.iscoroutinefunction(
                getattr(protocol, name)
            ), name
    finally:
        await store.db.close()


async def test_a_transaction_of_the_unit_of_work_spans_repositories(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    store = await _store(tmp_path)
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    try:
        practice = await store.practices.add("Praktijk", now)
        with pytest.raises(RuntimeError):
            async with store.transaction():
                patient = await store.patients.add(practice, None, now)
                await store.consults.add(practice, patient, None, now, now)
                raise RuntimeError("cut off halfway")
        # Neither write of the failed unit is visible, through any repository.
        assert await store.consults.of_practice(practice) == []
        assert await store.patients.get(1) is None
    finally:
        await store.db.close()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_only_storage_and_the_composition_root_touch_sqlite() -> None:
    offenders: list[str] = []
    for path in sorted([*ROOT.glob("bot/**/*.py"), *ROOT.glob("scheduler/**/*.py")]):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(MAY_USE_SQLITE):
            continue
        for module in _imports(path):
            sqlite_side = module in ("aiosqlite", "sqlite3") or (
                module.startswith("bot.storage") and module not in ALLOWED_STORAGE_MODULES
            )
            if sqlite_side:
                offenders.append(f"{relative} imports {module}")
    assert offenders == []


async def test_inside_a_scope_a_patient_is_read_once_and_a_write_is_seen(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    store = await _store(tmp_path)
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    statements: list[str] = []
    try:
        practice = await store.practices.add("Praktijk", now)
        patient_id = await store.patients.add(practice, None, now)
        await store.patients.link(patient_id, 501, 501)
        await store.db.trace(statements.append)
        with store.scope():
            first = await store.patients.by_telegram(501)
            assert first is not None and first.read_aloud is None
            assert await store.patients.get(patient_id) == first
            assert sum("FROM patients" in s for s in statements) == 1
            # A write forgets the kept row: the next read sees the change.
            await store.patients.set_preference(patient_id, "read_aloud", True)
            assert (await store.patients.get(patient_id)).read_aloud is True
            # A rolled-back transaction forgets what was read inside it.
            with pytest.raises(RuntimeError):
                async with store.transaction():
                    await store.patients.set_preference(patient_id, "read_aloud", False)
                    assert (await store.patients.get(patient_id)).read_aloud is False
                    raise RuntimeError("rolled back")
            assert (await store.patients.get(patient_id)).read_aloud is True
        # Outside a scope nothing is kept: every read asks SQLite.
        before = len(statements)
        await store.patients.get(patient_id)
        await store.patients.get(patient_id)
        assert len(statements) - before == 2
    finally:
        await store.db.close()


async def test_an_update_marked_in_a_rolled_back_transaction_is_marked_again(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    store = await _store(tmp_path)
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    try:
        with store.scope():
            with pytest.raises(RuntimeError):
                async with store.transaction():
                    await store.updates.mark_processed(77, now)
                    raise RuntimeError("the answer failed")
            assert not await store.updates.is_processed(77)
            await store.updates.mark_processed(77, now)  # the guard's mark after the failure
            assert await store.updates.is_processed(77)
    finally:
        await store.db.close()


async def test_a_task_started_inside_a_transaction_or_scope_has_neither(tmp_path: Path) -> None:
    """A task inherits context variables: its own write must wait for the transaction (not join it
    and be rolled back with it), and it must not read or clear the starter's identity map."""
    import asyncio
    from datetime import UTC, datetime

    store = await _store(tmp_path)
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    try:
        practice = await store.practices.add("Praktijk", now)
        with pytest.raises(RuntimeError):
            async with store.transaction():
                await store.practices.add("rolled back", now)
                other = asyncio.create_task(store.practices.add("its own", now))
                await asyncio.sleep(0.05)
                assert not other.done()  # it waits for the lock
                raise RuntimeError("the starter's transaction fails")
        await other
        assert [p.name for p in await store.practices.all()] == ["Praktijk", "its own"]
        with store.scope():
            assert (await store.practices.get(practice)).name == "Praktijk"
            await store.db.execute("UPDATE practices SET name = 'Nieuw' WHERE id = ?", (practice,))

            async def read() -> str:
                return (await store.practices.get(practice)).name

            assert await asyncio.create_task(read()) == "Nieuw"  # not the starter's kept row
    finally:
        await store.db.close()
