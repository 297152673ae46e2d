"""End to end: plans and reminders with the real ``python -m bot run`` against the fake Bot API
over HTTP, on a simulated clock (SIMULATED_CLOCK_START / _SPEED: one minute per second).

A patient makes their plan in Telegram after the POH asks them to (/planmaken). Meanwhile 100
other patients have a reminder due at 08:00. During that burst the bot is SIGKILLed and
restarted. Afterwards every reminder was delivered; a reminder may arrive twice only if it was in
flight at the kill (sent, but not yet recorded as sent). The patient's own reminder arrives at the
time they chose and their answer is recorded.
"""

from __future__ import annotations

import signal
import sqlite3
import time as time_module
from collections import Counter
from datetime import datetime, time
from pathlib import Path
from typing import Any

from bot.app import build_app
from bot.clock import FrozenClock
from bot.config import Settings
from bot.testing.fake_telegram import ApiError, FakeBotAPIServer, FakeTelegram
from bot.testing.process import BotProcess
from scheduler.schedules import Schedule
from tests.catalog import asks, label, option, says
from tests.test_e2e import bot_env

BURST = 100
FIRST_CHAT = 880_000
PLANNER = 734_000
POH = 512_000
SIM_START = "2026-11-23T07:44:00+01:00"


async def seed(env: dict[str, str]) -> int:
    """Practice, linked POH and patients, with the real services on the bot's database file."""
    settings = Settings(_env_file=None, database_path=Path(env["DATABASE_PATH"]))
    clock = FrozenClock(datetime.fromisoformat(SIM_START))
    app = await build_app(settings, clock)
    try:
        now = clock.now()
        practice = await app.repo.practices.add("Huisartsenpraktijk De Linde", now)
        clinician = await app.repo.clinicians.add(practice, "Anna (POH)", now)
        await app.repo.clinicians.link(clinician, POH, POH)
        consult_at = datetime(2026, 11, 23, 7, 30, tzinfo=settings.zone)
        planner = await app.repo.patients.add(practice, None, now)
        await app.repo.patients.link(planner, PLANNER, PLANNER)
        consult = await app.repo.consults.add(practice, planner, clinician, consult_at, now)
        for i in range(BURST):
            patient = await app.repo.patients.add(practice, None, now)
            await app.repo.patients.link(patient, FIRST_CHAT + i, FIRST_CHAT + i)
            goal = await app.plans.add_goal(patient, "Fitter worden", "cli")
            daily = Schedule("daily", time(8, 0), now.astimezone(settings.zone).date())
            await app.plans.add_action(goal, "Tien minuten wandelen", daily, "cli")
        return consult
    finally:
        await app.close()


async def test_plan_and_reminder_burst_survive_sigkill(
    tmp_path: Path, fake: tuple[FakeTelegram, FakeBotAPIServer]
) -> None:
    core, server = fake
    core.limits = True  # Telegram's ~30 msg/s, with 429s
    # Our simulated patient answers within milliseconds, which no person does; the per-chat
    # limit would then cost a second per answer. The global limit is what the burst tests.
    core.per_chat_gap = 0.05
    env = {
        **bot_env(tmp_path, core, server),
        "SIMULATED_CLOCK_START": SIM_START,
        "SIMULATED_CLOCK_SPEED": "60",
        "PLAN_INVITE_AFTER_MINUTES": "0",
    }
    consult = await seed(env)
    bot = BotProcess(env, tmp_path, tmp_path / "bot.log")
    started = time_module.monotonic()
    await bot.start()
    try:

        async def answer(action: Any) -> None:
            count = len(core.to_chat(PLANNER))
            action()
            await core.wait_sent(PLANNER, count + 1, timeout=30)

        def tap(label: str) -> Any:
            return lambda: core.user_taps(PLANNER, core.last_question(PLANNER), label)

        def say(text: str) -> Any:
            return lambda: core.user_sends(PLANNER, text)

        core.user_sends(POH, f"/planmaken {consult}")
        await core.wait_for(lambda: len(core.to_chat(PLANNER)) >= 2, timeout=30)
        assert asks("goal", "plan") in core.last_to(PLANNER).text, [m.text for m in core.to_chat(PLANNER)]
        await answer(say("Weer naar de markt lopen"))
        await answer(say("Elke dag een rondje om de kerk"))
        await answer(tap(option("plan", "often", "daily")))
        await answer(say("8:10"))
        await answer(tap(option("plan", "until", "2w")))
        await answer(tap(option("plan", "measure", "none")))
        await answer(say("Ik loop elke ochtend om twaalf over acht een rondje"))
        await answer(tap(label("buttons.plan_yes")))
        assert says("plan.closing") in core.last_to(PLANNER).text
        planned_after = time_module.monotonic() - started

        # The 08:00 burst: kill the bot after 40 reminders went out.
        sent_in_burst = 0

        def kill_mid_burst(method: str, params: dict[str, Any]) -> ApiError | None:
            nonlocal sent_in_burst
            if method == "sendmessage" and int(params.get("chat_id", 0)) >= FIRST_CHAT:
                sent_in_burst += 1
                if sent_in_burst == 40:
                    bot.kill()
                    core.inject = None
            return None

        core.inject = kill_mid_burst

        assert await bot.wait(timeout=60) == -signal.SIGKILL
        at_kill = len([m for m in core.sent if m.chat_id >= FIRST_CHAT])
        await bot.start()

        def per_chat() -> Counter[int]:
            return Counter(m.chat_id for m in core.sent if m.chat_id >= FIRST_CHAT and "wandelen" in m.text)

        await core.wait_for(lambda: len(per_chat()) == BURST, timeout=60)
        mine = await core.wait_for(
            lambda: [m for m in core.to_chat(PLANNER) if "rondje om de kerk" in m.text and m.reply_markup],
            timeout=60,
        )
        core.user_taps(PLANNER, mine[0], label("reminder.buttons.done"))
        await core.wait_for(lambda: says("reminder.well_done") in core.last_to(PLANNER).text, timeout=30)
    finally:
        bot.kill()
        await bot.wait()

    counts = per_chat()
    duplicates = sum(n - 1 for n in counts.values())
    lost = BURST - len(counts)
    db = sqlite3.connect(env["DATABASE_PATH"])
    statuses = Counter(r[0] for r in db.execute("SELECT status FROM outbox WHERE kind = 'reminder'"))
    reminder_rows = db.execute("SELECT COUNT(*) FROM reminders").fetchone()[0]
    due, answered, status = db.execute(
        "SELECT r.due_at, o.sent_at, r.status FROM reminders r JOIN outbox o ON o.payload_json LIKE "
        "'%' || r.id || '}' AND o.kind = 'reminder' WHERE r.patient_id = 1"
    ).fetchone()
    print(
        f"\nburst {BURST}: {at_kill} sent before the kill, lost {lost}, duplicates {duplicates} "
        f"(in flight at the kill), 429s {core.too_many}, outbox {dict(statuses)}; "
        f"plan made {planned_after:.1f} s after start (the burst is due 16 s after start)"
    )
    assert lost == 0
    assert duplicates <= 16  # at most the sender's workers can be in flight at once
    assert statuses == Counter({"sent": BURST + 1}) and reminder_rows == BURST + 1
    # The planner's reminder: due at 08:10 Amsterdam, sent within a simulated minute, answered.
    assert due == "2026-11-23T07:10:00+00:00" and status == "done"
    assert datetime.fromisoformat(answered) - datetime.fromisoformat(due) < (
        datetime.fromisoformat("2026-01-01T00:01:00") - datetime.fromisoformat("2026-01-01T00:00:00")
    )
