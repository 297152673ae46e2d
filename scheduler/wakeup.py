"""APScheduler only wakes the bot; the database stays the source of truth.

Nothing domain-related is stored in a job store: the single job calls ``tick`` on an interval
(create due reminders from the plans' schedules, then send due outbox rows). So 100,000 active
schedules cost rows in SQLite, not jobs in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler


def start_wakeups(tick: Callable[[], Awaitable[int]], every_seconds: float = 15.0) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        tick,
        "interval",
        seconds=every_seconds,
        id="outbox-flush",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
    scheduler.start()
    return scheduler
