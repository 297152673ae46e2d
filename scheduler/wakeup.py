"""APScheduler only wakes the sender; the outbox table stays the source of truth.

Nothing domain-related is stored in a job store: the single job calls ``flush`` on an interval.
"""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scheduler.outbox import OutboxSender


def start_wakeups(outbox: OutboxSender, every_seconds: float = 15.0) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        outbox.flush,
        "interval",
        seconds=every_seconds,
        id="outbox-flush",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
    scheduler.start()
    return scheduler
