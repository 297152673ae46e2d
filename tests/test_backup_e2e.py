"""A backup taken while the real bot is busy, restored after the bot is gone.

``python -m bot run`` runs against the fake Bot API over HTTP on a simulated clock; 100 patients
get a reminder at 08:00 and tap "Gedaan", ten a second. While those answers come
in, ``python -m bot backup --passphrase-env`` runs as its own process. A restore is refused while
the bot runs; the bot is then SIGKILLed (its WAL left behind) and the backup restored. Every answer
the bot had confirmed to a patient before the backup started is in the restored database, which
is consistent (each answered reminder's message is recorded as sent) and passes SQLite's
integrity check; the database that was replaced is kept aside with every answer of the burst.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from datetime import time as clock_time
from pathlib import Path

from bot.app import build_app
from bot.clock import FrozenClock
from bot.config import Settings
from bot.testing.fake_telegram import FakeBotAPIServer, FakeTelegram
from bot.testing.process import BotProcess
from scheduler.schedules import Schedule
from tests.catalog import label, says
from tests.conftest import run_cli
from tests.test_e2e import bot_env

BURST = 100
FIRST_CHAT = 660_000
SIM_START = "2026-11-23T07:59:40+01:00"  # the burst is due a third of a second after the start
PASSPHRASE = "zeven lange woorden voor een goede back-up"


async def seed(database: Path) -> None:
    settings = Settings(_env_file=None, database_path=database)
    clock = FrozenClock(datetime.fromisoformat(SIM_START))
    app = await build_app(settings, clock)
    try:
        now = clock.now()
        practice = await app.repo.practices.add("Huisartsenpraktijk De Linde", now)
        for i in range(BURST):
            patient = await app.repo.patients.add(practice, None, now)
            await app.repo.patients.link(patient, FIRST_CHAT + i, FIRST_CHAT + i)
            goal = await app.plans.add_goal(patient, "Fitter worden", "cli")
            daily = Schedule("daily", clock_time(8, 0), now.astimezone(settings.zone).date())
            await app.plans.add_action(goal, "Tien minuten wandelen", daily, "cli")
    finally:
        await app.close()


def _listing(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def done_chats(database: Path) -> set[int]:
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute(
            "SELECT p.telegram_chat_id FROM reminders r JOIN patients p ON p.id = r.patient_id "
            "WHERE r.status = 'done'"
        )
        return {int(r[0]) for r in rows}
    finally:
        conn.close()


async def test_a_backup_during_a_reminder_burst_keeps_every_confirmed_answer(
    tmp_path: Path, fake: tuple[FakeTelegram, FakeBotAPIServer]
) -> None:
    core, server = fake
    # Telegram's limits stay off here: the bot's own pacing makes the burst last seconds, and a 429
    # on a tap's reply is not what this test is about.
    env = {
        **bot_env(tmp_path, core, server),
        "SIMULATED_CLOCK_START": SIM_START,
        "SIMULATED_CLOCK_SPEED": "60",
        "PLAN_INVITE_AFTER_MINUTES": "0",
        "VG_BACKUP_PASSPHRASE": PASSPHRASE,
    }
    database = Path(env["DATABASE_PATH"])
    await seed(database)
    done, gedaan = says("reminder.well_done"), label("reminder.buttons.done")
    tapped: set[int] = set()

    def confirmed() -> set[int]:
        """Chats whose answer the bot confirmed: it says so only after the answer is committed."""
        return {m.chat_id for m in core.sent if m.chat_id >= FIRST_CHAT and m.text == done}

    def tap_one_reminder() -> None:
        for message in list(core.sent):
            mine = message.chat_id >= FIRST_CHAT and message.chat_id not in tapped
            if mine and any(gedaan in text for text, _ in message.buttons):
                tapped.add(message.chat_id)
                core.user_taps(message.chat_id, message, gedaan)
                return

    async def answering_until(predicate: Callable[[], bool], timeout: float) -> None:
        """Patients tap their reminder, ten a second (the burst of answers lasts ten seconds and
        the backup command two to four), until ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"{len(confirmed())} of {BURST} confirmed"
            tap_one_reminder()
            await asyncio.sleep(0.1)

    bot = BotProcess(env, tmp_path, tmp_path / "bot.log")
    await bot.start()
    backup = tmp_path / "during-burst.vgb"
    try:
        await answering_until(lambda: len(confirmed()) >= 15, timeout=60)
        before = confirmed()
        started = time.monotonic()
        # The backup runs as its own process while the patients keep answering.
        pending = asyncio.ensure_future(
            run_cli("backup", str(backup), "--passphrase-env", "VG_BACKUP_PASSPHRASE", cwd=tmp_path, env=env)
        )
        await answering_until(pending.done, timeout=60)
        code, _, err = pending.result()
        took = time.monotonic() - started
        assert code == 0, err
        after = confirmed()
        assert len(before) < BURST, "the burst was over before the backup started"

        code, _, err = await run_cli(
            "restore", str(backup), "--passphrase-env", "VG_BACKUP_PASSPHRASE", cwd=tmp_path, env=env
        )
        assert code == 1 and "in use" in err and "Traceback" not in err

        await answering_until(lambda: len(confirmed()) == BURST, timeout=90)
    finally:
        bot.kill()
        await bot.wait()

    code, _, err = await run_cli(
        "restore", str(backup), "--passphrase-env", "VG_BACKUP_PASSPHRASE", cwd=tmp_path, env=env
    )
    assert code == 0, err
    restored = done_chats(database)
    kept = [
        p
        for p in _listing(tmp_path)
        if ".before-restore-" in p.name and not p.name.endswith(("-wal", "-shm"))
    ]
    print(
        f"\nbackup during a burst of {BURST}: {len(before)} answers confirmed when it started, "
        f"{len(after)} when it returned ({took:.1f} s, {backup.stat().st_size / 1024:.0f} KiB encrypted); "
        f"{len(restored)} in the restored database"
    )
    assert before <= restored, sorted(before - restored)
    assert len(restored) < BURST, "the snapshot was taken after the burst, not during it"
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # One snapshot: no answered reminder whose message is not recorded as sent.
        torn = conn.execute(
            "SELECT COUNT(*) FROM reminders r WHERE r.status = 'done' AND NOT EXISTS (SELECT 1 FROM outbox o "
            "WHERE o.kind = 'reminder' AND json_extract(o.payload_json, '$.reminder_id') = r.id "
            "AND o.status = 'sent')"
        ).fetchone()[0]
    finally:
        conn.close()
    assert torn == 0
    assert len(kept) == 1
    assert done_chats(kept[0]) == confirmed()  # the replaced database, with its WAL, lost nothing
