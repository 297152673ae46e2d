"""APScheduler only wakes the bot; the database stays the source of truth.

Nothing domain-related is stored in a job store: the single job calls ``tick`` on an interval
(create due reminders from the plans' schedules, then send due outbox rows). So 100,000 active
schedules cost rows in SQLite, not jobs in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler


def start_wakeups(tick: Callable[[], Awaitable[int]], every_seconds: float = 15.0) -> AsyncIOScheduler:
    async def beat() -> int:
        try:
            return await tick()
        except asyncio.CancelledError:
            # Shutdown cut a late tick off; its rows stay pending and go out after the restart.
            logging.getLogger(__name__).info("scheduler tick cancelled at shutdown")
            return 0

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        beat,
        "interval",
        seconds=every_seconds,
        id="outbox-flush",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
    scheduler.start()
    return scheduler
