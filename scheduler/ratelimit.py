"""Telegram's limits as a reservation scheduler: about 30 messages a second in total, and at
most one a second per chat.

Time is cut into global slots of 1/rate seconds. ``acquire`` takes the first free slot at or
after the chat's own next allowed moment and sleeps until it. A chat that must wait does not
hold up other chats (no head-of-line blocking), and reservations are made without awaiting,
so concurrent senders never take the same slot.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    def __init__(
        self,
        per_second: float = 30.0,
        per_chat_per_second: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second <= 0 or per_chat_per_second <= 0:
            raise ValueError("rates must be positive")
        self.gap = 1.0 / per_second
        self.chat_gap = 1.0 / per_chat_per_second
        self.clock = clock
        self.sleep = sleep
        self._origin = clock()
        self._taken: set[int] = set()
        self._next_chat: dict[int, float] = {}
        self._blocked_until = 0.0

    def reserve(self, chat_id: int) -> float:
        """The moment (on ``clock``) this chat may send; the slot is taken."""
        now = self.clock()
        earliest = max(now, self._blocked_until, self._next_chat.get(chat_id, 0.0))
        k = math.ceil((earliest - self._origin) / self.gap - 1e-9)
        while k in self._taken:
            k += 1
        self._taken.add(k)
        slot = self._origin + k * self.gap
        self._next_chat[chat_id] = slot + self.chat_gap
        self._forget(now)
        return slot

    def _forget(self, now: float) -> None:
        if len(self._taken) > 4096:
            current = math.floor((now - self._origin) / self.gap)
            self._taken = {k for k in self._taken if k >= current}
        if len(self._next_chat) > 10_000:
            self._next_chat = {c: t for c, t in self._next_chat.items() if t > now}

    async def acquire(self, chat_id: int) -> None:
        wait = self.reserve(chat_id) - self.clock()
        if wait > 0:
            await self.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Telegram said 429 retry_after: no new slot before then."""
        self._blocked_until = max(self._blocked_until, self.clock() + seconds)
