from __future__ import annotations

import itertools

import pytest

from scheduler.ratelimit import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_reservations_respect_global_and_per_chat_limits() -> None:
    clock = FakeTime()
    limiter = RateLimiter(30, 1, clock=clock)
    slots = [(chat, limiter.reserve(chat)) for chat in [1, 1, 2, 3, 1, 2, *list(range(10, 70))]]
    times = sorted(t for _, t in slots)
    assert all(b - a >= 1 / 30 - 1e-9 for a, b in itertools.pairwise(times))
    for chat in (1, 2):
        own = [t for c, t in slots if c == chat]
        assert all(b - a >= 1 - 1e-9 for a, b in itertools.pairwise(own))
    # 66 messages to mostly different chats take about 66/30 seconds, not 66.
    assert times[-1] - times[0] < 66 / 30 + 0.1


async def test_acquire_waits_and_429_pauses_everyone() -> None:
    clock = FakeTime()
    limiter = RateLimiter(10, 1, clock=clock, sleep=clock.sleep)
    await limiter.acquire(5)
    await limiter.acquire(5)
    assert clock.now == pytest.approx(101.0)
    limiter.pause(7)
    await limiter.acquire(6)
    assert clock.now == pytest.approx(108.0)


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, 1)
