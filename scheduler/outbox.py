"""Drain the durable outbox through a channel.

Every message that is not a direct reply (an agenda for the POH, later reminders) is first
committed as an outbox row, then sent, then marked sent. After a crash, pending rows are
sent on the next flush; a row recorded as sent is never sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.channels import Channel, DeliveryBlocked, DeliveryRejected, DeliveryRetry
from bot.clock import Clock
from bot.flows.model import OutMessage
from bot.storage.models import OutboxItem
from bot.storage.ports import UnitOfWork
from scheduler.ratelimit import RateLimiter

log = logging.getLogger(__name__)

Renderer = Callable[[OutboxItem], Awaitable[list[OutMessage] | None]]
MAX_ATTEMPTS = 8


class OutboxSender:
    def __init__(
        self, repo: UnitOfWork, channel: Channel, clock: Clock, limiter: RateLimiter | None = None
    ) -> None:
        self.repo = repo
        self.channel = channel
        self.clock = clock
        self.limiter = limiter or RateLimiter()
        self.workers = 16
        self.renderers: dict[str, Renderer] = {}
        # Called when a recipient blocked the bot (after the row is failed).
        self.on_blocked: Callable[[OutboxItem], Awaitable[None]] | None = None
        # Called when Telegram refused a row (400; the row is failed and never retried).
        self.on_rejected: Callable[[OutboxItem], Awaitable[None]] | None = None
        # Adds what a message needs at send time (a voice note for a patient who wants it read aloud).
        self.decorate: Callable[[int | None, list[OutMessage]], Awaitable[list[OutMessage]]] | None = None
        self._lock = asyncio.Lock()
        self._kicked: asyncio.Task[None] | None = None
        self._again = False
        self._stopping = False

    async def close(self, timeout: float = 10.0) -> None:
        """Shutdown: take no new rows, let the sends in progress finish and be recorded."""
        self._stopping = True

        async def quiet() -> None:
            async with self._lock:
                pass

        await asyncio.wait_for(quiet(), timeout)

    def kick(self) -> None:
        """Flush soon, in the background: a reply never waits for a burst of reminders to drain."""
        if self._stopping:
            return
        if self._kicked is not None and not self._kicked.done():
            self._again = True
            return
        self._kicked = asyncio.get_running_loop().create_task(self._run_kicked())

    async def _run_kicked(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            try:
                await self.flush()
            except Exception as exc:  # the next wake-up tries again; never crash the bot
                log.warning("background flush failed: %s", type(exc).__name__)

    async def settle(self) -> None:
        """Wait until a kicked flush is done (tests, shutdown)."""
        while self._kicked is not None and not self._kicked.done():
            await asyncio.shield(self._kicked)

    def register(self, kind: str, renderer: Renderer) -> None:
        """How to turn a row of ``kind`` into messages (None: nothing to send any more)."""
        self.renderers[kind] = renderer

    async def flush(self, limit: int = 500) -> int:
        """Send every due row, paced by the rate limiter; returns how many were sent.

        A small pool of workers takes a rate slot just before each send. Reserving slots for all
        rows up front would let a stalled event loop fire many late slots at once (a burst that
        Telegram answers with 429s); with the pool, a stall releases at most ``workers`` sends.
        """
        async with self._lock:
            if self._stopping:
                return 0
            items = await self.repo.outbox.due(self.clock.now(), limit)
            queue: asyncio.Queue[OutboxItem] = asyncio.Queue()
            for item in items:
                queue.put_nowait(item)
            counts = await asyncio.gather(
                *(self._worker(queue) for _ in range(min(self.workers, len(items))))
            )
            return sum(counts)

    async def _worker(self, queue: asyncio.Queue[OutboxItem]) -> int:
        sent = 0
        while not queue.empty() and not self._stopping:
            item = queue.get_nowait()
            await self.limiter.acquire(item.chat_id)
            try:
                sent += await self._send(item)
            except Exception as exc:  # one broken row never stops the others: it waits, then retries
                await self._postpone(item, 2.0**item.attempts, type(exc).__name__)
        return sent

    async def _postpone(self, item: OutboxItem, delay: float, why: str) -> None:
        give_up = item.attempts + 1 >= MAX_ATTEMPTS
        await self.repo.outbox.retry(item.id, self.clock.now() + timedelta(seconds=delay), give_up=give_up)
        log.warning("outbox item %s postponed %.0fs (%s, attempt %d)", item.id, delay, why, item.attempts + 1)

    async def _send(self, item: OutboxItem) -> int:
        renderer = self.renderers.get(item.kind)
        messages = await renderer(item) if renderer else None
        if not messages:
            log.warning("outbox item %s (%s) has nothing to send; cancelled", item.id, item.kind)
            await self.repo.outbox.cancel(item.id)
            return 0
        if self.decorate is not None:
            messages = await self.decorate(item.patient_id, messages)
        done = int(item.payload.get("_parts_sent", 0))
        ids: list[int] = []
        try:
            # One message at a time, each in its own rate slot (the first slot is already taken);
            # parts that went out are recorded, so a retry never sends them twice.
            for index, message in enumerate(messages[done:], start=done):
                if index > done:
                    await self.limiter.acquire(item.chat_id)
                ids += await self.channel.deliver(item.chat_id, [message])
                if index + 1 < len(messages):
                    await self.repo.outbox.parts_sent(item.id, index + 1)
        except DeliveryRetry as exc:
            self.limiter.pause(exc.after_seconds)
            await self._postpone(item, max(exc.after_seconds, 2**item.attempts), "retry")
            return 0
        except DeliveryRejected:
            await self.repo.outbox.retry(item.id, self.clock.now(), give_up=True)
            log.warning("outbox item %s (%s) refused by Telegram; failed, not retried", item.id, item.kind)
            if self.on_rejected is not None:
                try:
                    await self.on_rejected(item)
                except Exception as exc:  # the row stays failed; only the notice is missing
                    log.error("notice about outbox item %s failed: %s", item.id, type(exc).__name__)
            return 0
        except DeliveryBlocked:
            await self.repo.outbox.retry(item.id, self.clock.now(), give_up=True)
            log.warning("outbox item %s: recipient unreachable", item.id)
            if self.on_blocked is not None:
                await self.on_blocked(item)
            return 0
        await self.repo.outbox.sent(item.id, ids[0] if ids else None, self.clock.now())
        log.info("outbox item %s (%s) sent", item.id, item.kind)
        return 1
