"""The terminal demo with an answers file, storage guarantees and invite tokens."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.clock import FrozenClock
from bot.config import Settings
from bot.content import DEFAULT_CONTENT_DIR
from bot.services.invites import hash_token
from tests.catalog import dimension, label, says, theme
from tests.conftest import make_practice, run_cli

MIGRATIONS = Path(__file__).resolve().parent.parent / "bot" / "storage" / "migrations"
EXAMPLE = DEFAULT_CONTENT_DIR / "examples" / "demo_answers.yaml"


async def test_demo_with_answers_file_prints_the_agenda(tmp_path: Path) -> None:
    code, out, err = await run_cli(
        "demo", "--answers", str(EXAMPLE), "--db", str(tmp_path / "d.sqlite3"), cwd=tmp_path
    )
    assert code == 0, err
    agenda = out.split("The agenda as the POH receives it:")[1]
    assert f"Status: {says('clinician.status.ready')}" in agenda
    second = f"2. {theme('pijn', emoji=True)}"
    assert agenda.index("1. mijn knie") < agenda.index(second) < agenda.index("Levensgebieden")
    assert f"{dimension('lichaamsfuncties')}: 4 · wil bespreken · laag" in agenda
    assert f"Thema's: {theme('pijn')}, {theme('slapen')}" in agenda
    assert f"{dimension('kwaliteit_van_leven')}: 5 · wil bespreken · laag" in agenda
    assert f"Thema's: {theme('geld')}" in agenda
    assert '"Dat ik weer kan fietsen met mijn kleinzoon"' in agenda
    assert "- de nieuwe pillen" in agenda
    assert "Traceback" not in out + err


async def test_demo_stops_early_with_exit_code_2(tmp_path: Path) -> None:
    answers = tmp_path / "a.yaml"
    yes = json.dumps(label("buttons.consent_yes"))  # a JSON string is a YAML string
    answers.write_text(f"answers:\n  - {yes}\n  - /pauze\n", encoding="utf-8")
    code, out, _ = await run_cli("demo", "--answers", str(answers), cwd=tmp_path)
    assert code == 2
    assert f"Status: {says('clinician.status.in_progress')}" in out


async def test_migrations_wal_and_restart(settings: Settings, clock: FrozenClock) -> None:
    app = await build_app(settings, clock)
    await app.repo.practices.add("P", clock.now())
    assert await app.db.migrate() == []  # idempotent
    mode = await app.db.fetchone("PRAGMA journal_mode")
    assert mode[0] == "wal"
    await app.close()
    with sqlite3.connect(settings.database_path) as db:
        versions = [r[0] for r in db.execute("SELECT version FROM schema_migrations")]
    shipped = sorted(int(p.name.split("_")[0]) for p in MIGRATIONS.glob("*.sql"))
    assert versions == shipped and shipped[0] == 1
    app2 = await build_app(settings, clock)
    assert [p.name for p in await app2.repo.practices.all()] == ["P"]
    await app2.close()


async def test_two_processes_starting_on_one_new_file_both_migrate_cleanly(tmp_path: Path) -> None:
    """Two bot processes (say the bot and the web app) start at once on a fresh database: the
    second waits for the first's migrations and finds nothing left to do."""
    env_path = tmp_path / "both.sqlite3"
    code = (
        "import asyncio, sys; from bot.storage.db import Database\n"
        "async def main():\n"
        f"    db = await Database.open({str(env_path)!r})\n"
        "    print(len(await db.fetchall('SELECT version FROM schema_migrations')))\n"
        "    await db.close()\n"
        "asyncio.run(main())\n"
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = [await p.communicate() for p in procs]
    shipped = len(list(MIGRATIONS.glob("*.sql")))
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == str(shipped)


async def test_no_task_reads_what_another_may_still_roll_back(app: App, clock: FrozenClock) -> None:
    """Reads outside a transaction see committed rows only; a transaction sees its own writes."""
    inside, outside = asyncio.Event(), asyncio.Event()
    seen: dict[str, list[str]] = {}

    async def writer() -> None:
        with pytest.raises(RuntimeError):
            async with app.repo.transaction():
                await app.repo.practices.add("not yet", clock.now())
                seen["own"] = [p.name for p in await app.repo.practices.all()]
                inside.set()
                await outside.wait()
                raise RuntimeError("rolled back")

    async def reader() -> None:
        await inside.wait()
        seen["other"] = [p.name for p in await app.repo.practices.all()]
        outside.set()

    await asyncio.gather(writer(), reader())
    assert seen == {"own": ["not yet"], "other": []}
    assert await app.repo.practices.all() == []


async def test_a_read_after_a_commit_sees_it_while_many_tasks_read(app: App, clock: FrozenClock) -> None:
    """Twenty tasks read all the time (as patients' updates do); a read that starts after a commit
    still sees it. A statement left open between awaits kept the reader's snapshot old: the outbox
    then read a row it had just sent as pending, and the POH got an agenda twice."""
    practice = await app.repo.practices.add("v0", clock.now())
    stop = asyncio.Event()

    async def busy() -> None:
        while not stop.is_set():
            await app.db.fetchone("SELECT id FROM practices WHERE id = ?", (practice,))

    readers = [asyncio.create_task(busy()) for _ in range(20)]
    stale = []
    for version in range(1, 51):
        await app.db.execute("UPDATE practices SET name = ? WHERE id = ?", (f"v{version}", practice))
        row = await app.db.fetchone("SELECT name FROM practices WHERE id = ?", (practice,))
        if row is None or row["name"] != f"v{version}":
            stale.append(version)
    stop.set()
    await asyncio.gather(*readers)
    assert stale == []


async def test_transaction_rolls_back_everything(app: App, clock: FrozenClock) -> None:
    with pytest.raises(RuntimeError):
        async with app.repo.transaction():
            await app.repo.practices.add("half", clock.now())
            raise RuntimeError("boom")
    assert await app.repo.practices.all() == []


async def test_a_failed_statement_rolls_back_the_transaction_and_leaves_the_writer_usable(
    app: App, clock: FrozenClock
) -> None:
    """BEGIN goes with a transaction's first statement: a statement that fails (first or later)
    still rolls back all of it, and the next write works."""
    for before in (0, 1):
        with pytest.raises(sqlite3.OperationalError):
            async with app.repo.transaction():
                for _ in range(before):
                    await app.repo.practices.add("half", clock.now())
                await app.db.execute("INSERT INTO no_such_table VALUES (1)")
        assert await app.repo.practices.all() == []
    await app.repo.practices.add("after", clock.now())
    assert [p.name for p in await app.repo.practices.all()] == ["after"]


async def test_a_write_of_its_own_never_joins_another_tasks_transaction(app: App, clock: FrozenClock) -> None:
    """A write outside a transaction waits for the open one to end, so its rollback cannot take it."""
    inside = asyncio.Event()

    async def rolled_back() -> None:
        with pytest.raises(RuntimeError):
            async with app.repo.transaction():
                await app.repo.practices.add("rolled back", clock.now())
                inside.set()
                await asyncio.sleep(0.05)  # the other task's write is waiting now
                raise RuntimeError("boom")

    async def own_write() -> None:
        await inside.wait()
        await app.repo.practices.add("kept", clock.now())

    await asyncio.gather(rolled_back(), own_write())
    assert [p.name for p in await app.repo.practices.all()] == ["kept"]


async def test_invite_tokens_are_random_hashed_single_use(app: App, clock: FrozenClock) -> None:
    info = await make_practice(app, clock)
    token = info["patient"].token
    assert len(token) >= 32  # 24 random bytes = 192 bits
    rows = await app.db.fetchall("SELECT token_hash FROM invites")
    assert all(token not in r["token_hash"] for r in rows)
    assert hash_token(token) in {r["token_hash"] for r in rows}
    invite = await app.invites.valid_invite(token)
    assert invite is not None and await app.repo.invites.use(invite.id, clock.now())
    assert not await app.repo.invites.use(invite.id, clock.now())
    assert await app.invites.valid_invite(token) is None
    assert await app.invites.valid_invite("x" * 65) is None
    other = await app.invites.invite_patient(info["practice_id"], info["consult_at"])
    assert other.token != token


async def test_follow_up_invite_reuses_the_patient(app: App, clock: FrozenClock) -> None:
    info = await make_practice(app, clock)
    follow = await app.invites.invite_patient(
        info["practice_id"], info["consult_at"], patient_id=info["patient"].patient_id
    )
    assert follow.patient_id == info["patient"].patient_id and follow.consult_id != info["patient"].consult_id
    with pytest.raises(ValueError):
        await app.invites.invite_patient(info["practice_id"], info["consult_at"], patient_id=999)
    with pytest.raises(ValueError):
        await app.invites.invite_patient(info["practice_id"], info["consult_at"], clinician_id=999)


async def test_deferred_writes_go_in_one_job_are_read_back_and_fail_the_whole_transaction(
    app: App, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``execute_later`` in a transaction: the writes go with the next job (here COMMIT), a read in
    the transaction sees them, and one that fails there rolls back everything before it."""
    jobs: list[str] = []
    original = app.db.conn._execute

    async def counting(fn, *args):  # type: ignore[no-untyped-def]
        jobs.append(fn.__name__)
        return await original(fn, *args)

    monkeypatch.setattr(app.db.conn, "_execute", counting)
    now = clock.now().isoformat()
    async with app.repo.transaction():
        for name in ("a", "b", "c"):
            await app.db.execute_later("INSERT INTO practices (name, created_at) VALUES (?, ?)", (name, now))
        assert jobs == []  # nothing sent yet
    assert jobs == ["_finish"]  # BEGIN, three inserts and COMMIT: one hop to the writer's thread
    assert [p.name for p in await app.repo.practices.all()] == ["a", "b", "c"]

    async with app.repo.transaction():
        await app.db.execute_later("UPDATE practices SET name = 'A' WHERE name = 'a'")
        assert [p.name for p in await app.repo.practices.all()] == ["A", "b", "c"]  # its own writes
    with pytest.raises(sqlite3.OperationalError):
        async with app.repo.transaction():
            await app.repo.practices.add("kept?", clock.now())
            await app.db.execute_later("INSERT INTO no_such_table VALUES (1)")
    assert [p.name for p in await app.repo.practices.all()] == ["A", "b", "c"]
    await app.repo.practices.add("after", clock.now())  # the writer is usable again
    assert len(await app.repo.practices.all()) == 4
