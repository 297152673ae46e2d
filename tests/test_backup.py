"""``python -m bot backup`` / ``restore``: round trips (plain and encrypted), a wrong passphrase, damaged
and foreign files, a newer schema, and a database that is still open elsewhere. The CLI runs in this
process (``bot.cli.main``): what a person sees is its exit code and its stderr, never a traceback.
A backup taken during a reminder burst with the real bot: tests/test_backup_e2e.py."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.storage import db as db_module
from bot.storage.backup import (
    MAGIC,
    BackupError,
    WrongPassphrase,
    decrypt_stream,
    encrypt_stream,
)
from bot.storage.db import Database, known_migrations
from bot.storage.filelock import DatabaseInUse, hold_shared, take_exclusive
from bot.storage.store import SqliteStore

PASSPHRASE = "paard batterij nietje correct"
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI's world: DATABASE_PATH in tmp_path, no .env from the checkout, a passphrase variable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "data" / "bot.sqlite3"))
    monkeypatch.setenv("VG_TEST_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("VG_WRONG_PASSPHRASE", "dit is niet de goede zin")
    yield tmp_path / "data" / "bot.sqlite3"


def practices(database: Path) -> list[str]:
    conn = sqlite3.connect(database)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM practices ORDER BY id")]
    finally:
        conn.close()


def add_practice(database: Path, name: str) -> None:
    async def work() -> None:
        store = SqliteStore(await Database.open(database))
        try:
            await store.practices.add(name, NOW)
        finally:
            await store.db.close()

    asyncio.run(work())


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_plain_backup_restores_and_the_old_database_is_kept_aside(
    here: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_practice(here, "De Linde")
    backup = tmp_path / "backup.sqlite3"
    code, out, err = cli(capsys, "backup", str(backup))
    assert code == 0, err
    assert backup.read_bytes().startswith(b"SQLite format 3\x00")
    assert backup.stat().st_mode & 0o077 == 0  # patient data: only the owner reads it
    add_practice(here, "Na de back-up")

    code, out, err = cli(capsys, "restore", str(backup))
    assert code == 0, err
    assert practices(here) == ["De Linde"]
    kept = sorted(here.parent.glob("bot.sqlite3.before-restore-*"))
    assert len(kept) == 1 and practices(kept[0]) == ["De Linde", "Na de back-up"]
    assert str(kept[0].name) in out
    # The restored file opens as the bot opens it, with every migration.
    add_practice(here, "Weer in gebruik")
    assert practices(here) == ["De Linde", "Weer in gebruik"]


def test_an_encrypted_backup_needs_its_passphrase(
    here: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_practice(here, "Huisartsenpraktijk De Linde")
    backup = tmp_path / "backup.vgb"
    code, _, err = cli(capsys, "backup", str(backup), "--passphrase-env", "VG_TEST_PASSPHRASE")
    assert code == 0, err
    raw = backup.read_bytes()
    assert raw.startswith(MAGIC) and b"De Linde" not in raw and b"SQLite format" not in raw
    add_practice(here, "Later")

    code, _, err = cli(capsys, "restore", str(backup), "--passphrase-env", "VG_WRONG_PASSPHRASE")
    assert code == 1
    assert "wrong passphrase" in err and "Traceback" not in err
    assert practices(here) == ["Huisartsenpraktijk De Linde", "Later"]  # nothing replaced
    assert not list(here.parent.glob("*.before-restore-*"))

    code, _, err = cli(capsys, "restore", str(backup))  # no passphrase and no terminal to ask
    assert code == 1 and "encrypted" in err and "--passphrase-env" in err and "Traceback" not in err

    code, _, err = cli(capsys, "restore", str(backup), "--passphrase-env", "VG_TEST_PASSPHRASE")
    assert code == 0, err
    assert practices(here) == ["Huisartsenpraktijk De Linde"]


def test_a_damaged_or_cut_off_backup_is_refused_and_nothing_is_replaced(
    here: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_practice(here, "De Linde")
    encrypted, plain = tmp_path / "b.vgb", tmp_path / "b.sqlite3"
    assert cli(capsys, "backup", str(encrypted), "--passphrase-env", "VG_TEST_PASSPHRASE")[0] == 0
    assert cli(capsys, "backup", str(plain))[0] == 0
    raw = bytearray(encrypted.read_bytes())
    flipped = tmp_path / "flipped.vgb"
    raw[len(raw) // 2] ^= 0x01
    flipped.write_bytes(bytes(raw))
    cut = tmp_path / "cut.vgb"
    cut.write_bytes(encrypted.read_bytes()[:-100])
    conn = sqlite3.connect(plain)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'practices'").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    pages = bytearray(plain.read_bytes())
    start = (root - 1) * size
    pages[start : start + 12] = b"\xa5" * 12  # the practices table's page header is garbage
    garbled = tmp_path / "garbled.sqlite3"
    garbled.write_bytes(bytes(pages))
    junk = tmp_path / "notes.txt"
    junk.write_text("geen back-up\n")
    add_practice(here, "Later")
    for bad, words in (
        (flipped, "damaged"),
        (cut, "damaged"),
        (garbled, "damaged"),
        (junk, "not a Voorgesprek backup"),
    ):
        code, _, err = cli(capsys, "restore", str(bad), "--passphrase-env", "VG_TEST_PASSPHRASE")
        assert code == 1, bad
        assert words in err and "Traceback" not in err, (bad, err)
        assert practices(here) == ["De Linde", "Later"]
    assert not list(here.parent.glob("*.before-restore-*"))
    assert sorted(p.name for p in here.parent.iterdir()) == ["bot.sqlite3", "bot.sqlite3.lock"]


def test_a_backup_from_newer_code_or_another_program_is_refused(
    here: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_practice(here, "De Linde")
    newer = tmp_path / "newer.sqlite3"
    assert cli(capsys, "backup", str(newer))[0] == 0
    conn = sqlite3.connect(newer)
    conn.execute("INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', '2030-01-01')")
    conn.commit()
    conn.close()
    code, _, err = cli(capsys, "restore", str(newer))
    assert code == 1 and "newer" in err and str(max(known_migrations())) in err

    foreign = tmp_path / "foreign.sqlite3"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    code, _, err = cli(capsys, "restore", str(foreign))
    assert code == 1 and "not a Voorgesprek database" in err
    assert practices(here) == ["De Linde"]


def test_an_older_backup_restores_and_is_migrated_at_the_next_start(
    here: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = db_module._migrations()
    newest = everything[-1][0]
    monkeypatch.setattr(db_module, "_migrations", lambda: everything[:-1])  # code of a release ago
    add_practice(here, "De Linde")
    older = tmp_path / "older.sqlite3"
    assert cli(capsys, "backup", str(older))[0] == 0
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_PATH", str(here))
    add_practice(here, "Na de update")
    code, out, err = cli(capsys, "restore", str(older))
    assert code == 0, err
    assert f"migrations {newest} at its next start" in out
    add_practice(here, "Daarna")  # opening it applies the missing migration
    assert practices(here) == ["De Linde", "Daarna"]
    conn = sqlite3.connect(here)
    assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == newest
    conn.close()


def test_restore_refuses_a_database_another_process_has_open(
    here: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_practice(here, "De Linde")
    backup = tmp_path / "b.sqlite3"
    assert cli(capsys, "backup", str(backup))[0] == 0

    async def while_open() -> tuple[int, str]:
        db = await Database.open(here)  # as `python -m bot run` or `web` holds it
        try:
            code = await asyncio.to_thread(main, ["restore", str(backup)])
            return code, capsys.readouterr().err
        finally:
            await db.close()

    code, err = asyncio.run(while_open())
    assert code == 1 and "in use" in err and "python -m bot run" in err and "Traceback" not in err
    assert not list(here.parent.glob("*.before-restore-*"))
    assert cli(capsys, "restore", str(backup))[0] == 0  # closed: now it may


async def test_a_bot_starting_during_a_restore_waits_for_it(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    held = take_exclusive(database)
    try:
        with pytest.raises(DatabaseInUse, match="being restored"):
            await hold_shared(database, wait=0.3)
        with pytest.raises(DatabaseInUse):
            take_exclusive(database)  # and a second restore refuses at once
    finally:
        held.release()
    (await hold_shared(database, wait=0.3)).release()


def test_backup_refuses_to_overwrite_or_use_a_short_passphrase(
    here: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_practice(here, "De Linde")
    target = tmp_path / "b.sqlite3"
    target.write_text("iets anders")
    code, _, err = cli(capsys, "backup", str(target))
    assert code == 1 and "--overwrite" in err and target.read_text() == "iets anders"
    assert cli(capsys, "backup", str(target), "--overwrite")[0] == 0
    monkeypatch.setenv("VG_SHORT", "kort")
    code, _, err = cli(capsys, "backup", str(tmp_path / "c.vgb"), "--passphrase-env", "VG_SHORT")
    assert code == 1 and "at least 12" in err and not (tmp_path / "c.vgb").exists()
    code, _, err = cli(capsys, "backup", str(tmp_path / "c.vgb"), "--passphrase-env", "VG_NOT_SET")
    assert code == 1 and "VG_NOT_SET" in err
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "nowhere.sqlite3"))
    code, _, err = cli(capsys, "backup", str(tmp_path / "d.sqlite3"))
    assert code == 1 and "no database" in err and not (tmp_path / "nowhere.sqlite3").exists()


def test_chunks_cannot_be_dropped_reordered_or_cut_at_a_boundary() -> None:
    plain = bytes(range(256)) * 40  # 10 KiB: ten chunks of 1 KiB
    sealed = io.BytesIO()
    encrypt_stream(io.BytesIO(plain), sealed, PASSPHRASE, chunk=1024)
    data = sealed.getvalue()
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(data), out, PASSPHRASE)
    assert out.getvalue() == plain
    start, size = 40 + 16, 1024 + 16
    chunks = [data[start + i * size : start + (i + 1) * size] for i in range(10)]
    head = data[:start]
    for tampered in (
        head + b"".join(chunks[:9]),  # the last chunk dropped: cut exactly at a boundary
        head + b"".join([chunks[1], chunks[0], *chunks[2:]]),  # reordered
        head + b"".join(chunks[:4] + chunks[5:]),  # one dropped in the middle
    ):
        with pytest.raises(BackupError, match="damaged"):
            decrypt_stream(io.BytesIO(tampered), io.BytesIO(), PASSPHRASE)
    with pytest.raises(WrongPassphrase):
        decrypt_stream(io.BytesIO(data), io.BytesIO(), PASSPHRASE + "!")
