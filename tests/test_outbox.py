"""The durable outbox sender: paced per chat, retries on 429/5xx, gives up on 403, never twice."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

from bot.app import App
from bot.channels import DeliveryBlocked, DeliveryRetry
from bot.clock import FrozenClock, timedelta
from bot.flows.model import OutMessage
from bot.storage.models import OutboxItem
from scheduler.outbox import OutboxSender
from scheduler.ratelimit import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class RecordingChannel:
    def __init__(self, clock: FakeTime) -> None:
        self.clock = clock
        self.sent: list[tuple[float, int, str]] = []
        self.fail: dict[int, Exception] = {}

    async def deliver(
        self, chat_id: int, messages: Sequence[OutMessage], *, origin_message_id: int | None = None
    ) -> list[int]:
        if chat_id in self.fail:
            raise self.fail.pop(chat_id)
        self.sent += [(self.clock.now, chat_id, m.text) for m in messages]
        return list(range(len(messages)))


async def echo(item: OutboxItem) -> list[OutMessage]:
    return [OutMessage(str(item.payload["n"]))]


def sender(app: App, clock: FrozenClock) -> tuple[OutboxSender, RecordingChannel, FakeTime]:
    time = FakeTime()
    channel = RecordingChannel(time)
    out = OutboxSender(app.repo, channel, clock, RateLimiter(30, 1, clock=time, sleep=time.sleep))
    out.register("test", echo)
    return out, channel, time


async def test_paced_per_chat_and_sent_once(app: App, clock: FrozenClock) -> None:
    out, channel, _ = sender(app, clock)
    for n in range(6):
        await app.repo.outbox.enqueue("test", 100 + n % 2, {"n": n}, clock.now(), clock.now())
    assert await out.flush() == 6
    assert await out.flush() == 0  # recorded as sent: never again
    by_chat = {c: [t for t, cc, _ in channel.sent if cc == c] for c in (100, 101)}
    for times in by_chat.values():
        assert len(times) == 3 and all(b - a >= 1 - 1e-9 for a, b in itertools.pairwise(times))
    assert {r["status"] for r in await app.repo.outbox.rows("test")} == {"sent"}


async def test_retry_after_then_success_and_blocked(app: App, clock: FrozenClock) -> None:
    out, channel, time = sender(app, clock)
    await app.repo.outbox.enqueue("test", 200, {"n": 1}, clock.now(), clock.now())
    await app.repo.outbox.enqueue("test", 201, {"n": 2}, clock.now(), clock.now())
    channel.fail = {200: DeliveryRetry(7), 201: DeliveryBlocked()}
    assert await out.flush() == 0
    rows = {r["chat_id"]: r for r in await app.repo.outbox.rows("test")}
    assert rows[200]["status"] == "pending" and rows[200]["attempts"] == 1
    assert rows[201]["status"] == "failed"
    assert await out.flush() == 0  # not due yet
    clock.advance(timedelta(seconds=8))
    assert await out.flush() == 1
    assert [c for _, c, _ in channel.sent] == [200]
    assert time.now >= 7  # the 429 paused the limiter


async def test_a_multi_part_row_never_sends_a_part_twice(app: App, clock: FrozenClock) -> None:
    out, channel, _ = sender(app, clock)

    async def three_parts(item: OutboxItem) -> list[OutMessage]:
        return [OutMessage(f"part {i}") for i in (1, 2, 3)]

    out.register("long", three_parts)
    await app.repo.outbox.enqueue("long", 400, {}, clock.now(), clock.now())
    real_deliver = channel.deliver
    calls = 0

    async def fail_second(chat_id: int, messages: Sequence[OutMessage], **kw: object) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise DeliveryRetry(3)
        return await real_deliver(chat_id, messages)

    channel.deliver = fail_second  # type: ignore[method-assign]
    assert await out.flush() == 0
    clock.advance(timedelta(seconds=5))
    assert await out.flush() == 1
    assert [text for _, _, text in channel.sent] == ["part 1", "part 2", "part 3"]
    times = [t for t, _, _ in channel.sent]
    assert all(b - a >= 1 - 1e-9 for a, b in itertools.pairwise(times))  # each part in its own slot


async def test_nothing_to_render_is_cancelled(app: App, clock: FrozenClock) -> None:
    out, channel, _ = sender(app, clock)
    await app.repo.outbox.enqueue("unknown-kind", 300, {}, clock.now(), clock.now())
    assert await out.flush() == 0
    assert (await app.repo.outbox.rows("unknown-kind"))[0]["status"] == "cancelled"
    assert channel.sent == []


async def test_fake_api_limits_answer_429_and_the_sender_stays_under_them(tmp_path: object) -> None:
    """Over real HTTP: the fake Bot API enforces ~30 msg/s and 1 msg/s per chat with 429s; a burst
    through the paced sender arrives complete, once each, without a single 429."""
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    from bot.app import build_app
    from bot.config import Settings
    from bot.telegram.channel import TelegramChannel
    from bot.testing.fake_telegram import FakeBotAPIServer, FakeTelegram

    fake = FakeTelegram(limits=True)
    server = FakeBotAPIServer(fake)
    await server.start()
    app = await build_app(Settings(_env_file=None, database_path=tmp_path / "o.sqlite3"))  # type: ignore[operator]
    bot = Bot(fake.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.base_url)))
    try:
        # Unpaced, two quick sends to one chat: the second is refused like Telegram would.
        channel = TelegramChannel(bot)
        await channel.deliver(1, [OutMessage("een")])
        try:
            await channel.deliver(1, [OutMessage("twee")])
            raise AssertionError("expected a 429")
        except DeliveryRetry as exc:
            assert exc.after_seconds >= 1
        outbox = app.attach_channel(channel)
        outbox.register("test", echo)
        now = app.clock.now()
        for n in range(45):
            await app.repo.outbox.enqueue("test", 500 + n % 40, {"n": n}, now, now)
        refused_before = fake.too_many
        assert await outbox.flush() == 45
        assert fake.too_many == refused_before
        texts = sorted(int(m.text) for m in fake.sent if m.chat_id >= 500)
        assert texts == list(range(45))
    finally:
        await bot.session.close()
        await app.close()
        await server.stop()


async def test_shutdown_waits_for_the_tick_in_hand_and_starts_no_new_one(app: App) -> None:
    """A heartbeat that is writing when the bot stops finishes before the database closes."""
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []
    materialise = app.reminders.materialise

    async def slow_materialise() -> int:
        started.set()
        await release.wait()
        made = await materialise()
        finished.append("materialised")
        return made

    app.reminders.materialise = slow_materialise  # type: ignore[method-assign]
    running = asyncio.create_task(app.tick())
    await started.wait()
    stopping = asyncio.create_task(app.stop_ticks(timeout=5))
    await asyncio.sleep(0.05)
    assert not stopping.done() and not finished
    release.set()
    await stopping
    assert finished == ["materialised"] and running.done()
    assert await app.tick() == 0 and finished == ["materialised"]
