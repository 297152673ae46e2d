"""The durable inbox: stored before confirmed, per-chat order, chats in parallel, unreadable skipped."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest
from aiogram.types import Update

from bot.app import App
from bot.clock import FrozenClock
from bot.storage.inbox import InboxRepository, InboxRow
from bot.telegram.inbox import InboxWorkers, chat_key, store_and_submit
from bot.testing.fake_telegram import FakeTelegram
from tests.catalog import says
from tests.conftest import Harness, make_practice

PATIENT = 7001
STRANGER = 9009


def message(update_id: int, chat: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "X"},
            "text": text,
        },
    }


async def test_a_batch_is_stored_once_and_forgotten_when_handled(app: App) -> None:
    inbox = InboxRepository(app.db, app.clock)
    batch = [(1, 10, message(1, 10, "a")), (2, 11, message(2, 11, "b"))]
    assert [r.update_id for r in await inbox.store(batch)] == [1, 2]
    assert await inbox.store(batch) == []  # the same batch again after a crash: not twice
    assert await inbox.next_offset() == 3
    assert [r.update_id for r in await inbox.pending()] == [1, 2]
    await app.repo.updates.mark_processed(1, app.clock.now())  # in the answer's transaction
    await inbox.failed(2, "unreadable")
    assert await inbox.pending() == []
    rows = await app.db.fetchall("SELECT status, payload_json FROM inbox ORDER BY update_id")
    assert [(r["status"], r["payload_json"]) for r in rows] == [("handled", "{}"), ("failed", "{}")]


def test_chat_key_for_messages_taps_and_updates_without_a_chat() -> None:
    assert chat_key(message(1, 42, "x")) == 42
    tap = {"update_id": 2, "callback_query": {"id": "c", "from": {"id": 7}, "message": {"chat": {"id": 8}}}}
    assert chat_key(tap) == 8
    assert chat_key({"update_id": 3, "poll": {"id": "p"}}) is None


class SlowDispatcher:
    """Records the order of handling with random delays (stands in for aiogram in this unit test)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self.running = 0
        self.most = 0

    async def feed_update(self, bot: Any, update: Update) -> None:
        assert update.message is not None
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(random.uniform(0, 0.01))
        self.seen.append((update.message.chat.id, update.message.text or ""))
        self.running -= 1


async def test_chats_in_parallel_each_chat_in_order(app: App) -> None:
    inbox = InboxRepository(app.db, app.clock)
    dp = SlowDispatcher()
    workers = InboxWorkers(inbox, None, dp, concurrency=8)  # type: ignore[arg-type]
    raws = [message(n, 100 + n % 10, f"{n}") for n in range(1, 201)]
    for start in range(0, 200, 50):  # four polls
        await store_and_submit(inbox, workers, raws[start : start + 50])
    assert await workers.drain()
    assert len(dp.seen) == 200 and 1 < dp.most <= 8
    for chat in range(100, 110):
        texts = [int(t) for c, t in dp.seen if c == chat]
        assert texts == sorted(texts) and len(texts) == 20


async def test_an_unreadable_update_is_skipped_and_its_content_never_logged(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An update of another Bot API shape cannot stop the bot: it is marked failed, the log names
    its id and the failing field only, and the next update (another chat) is answered."""
    await make_practice(harness.app, clock)
    inbox = InboxRepository(harness.app.db, harness.app.clock)
    workers = InboxWorkers(inbox, harness.bot, harness.dp)
    broken = message(1, PATIENT, "mijn geheime woorden")
    broken["message"]["date"] = {"unexpected": "shape"}
    with caplog.at_level(logging.INFO):
        await store_and_submit(inbox, workers, [broken, message(2, STRANGER, "hallo")])
        assert await workers.drain()
    assert says("unknown_user") in core.last_to(STRANGER).text
    rows = await harness.app.db.fetchall("SELECT update_id, status, reason FROM inbox ORDER BY update_id")
    assert [(r["update_id"], r["status"]) for r in rows] == [(1, "failed"), (2, "handled")]
    assert "update 1 could not be read (message.date" in caplog.text
    assert "geheime" not in caplog.text and str(PATIENT) not in caplog.text


async def test_what_a_previous_run_stored_is_handled_first(app: App) -> None:
    inbox = InboxRepository(app.db, app.clock)
    await inbox.store([(5, 10, message(5, 10, "x"))])
    dp = SlowDispatcher()
    workers = InboxWorkers(inbox, None, dp)  # type: ignore[arg-type]
    workers.submit(await inbox.pending())
    assert await workers.drain()
    assert dp.seen == [(10, "x")]
    assert isinstance((await inbox.store([(6, 10, message(6, 10, "y"))]))[0], InboxRow)


async def test_an_update_applied_before_a_crash_is_not_applied_again_but_leaves_the_inbox(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    """Answered and recorded, then the bot died before its inbox row was marked: on restart the
    guard skips it (nothing sent twice) and the row is handled, its content cleared."""
    await make_practice(harness.app, clock)
    inbox = InboxRepository(harness.app.db, harness.app.clock)
    await inbox.store([(1, STRANGER, message(1, STRANGER, "hallo"))])
    async with harness.app.db.transaction():
        await harness.app.db.execute(
            "INSERT INTO processed_updates (update_id, processed_at) VALUES (1, '2026-11-29T10:00:00+00:00')"
        )
    workers = InboxWorkers(inbox, harness.bot, harness.dp)
    workers.submit(await inbox.pending())
    assert await workers.drain()
    assert core.to_chat(STRANGER) == []
    row = await harness.app.db.fetchone("SELECT status, payload_json FROM inbox WHERE update_id = 1")
    assert row is not None and (row["status"], row["payload_json"]) == ("handled", "{}")


async def test_the_bot_api_session_builds_each_response_type_once(settings: Any) -> None:
    """aiogram parses every answer as Response[<return type>]; pydantic keeps that class only weakly,
    so without the session's reference it is built again after a garbage collection (~5 ms a call)."""
    import gc
    import json
    import weakref

    from aiogram.methods import SendMessage

    from bot.telegram.runner import make_bot
    from bot.telegram.session import Session

    bot = make_bot(settings)
    try:
        assert isinstance(bot.session, Session)
        answer = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "x"}
        method = SendMessage(chat_id=1, text="x")
        response = bot.session.check_response(bot, method, 200, json.dumps({"ok": True, "result": answer}))
        assert response.result is not None and response.result.text == "x"
        built = weakref.ref(type(response))  # an id could be reused by the next class built
        del response
        gc.collect()
        assert built() is not None
    finally:
        await bot.session.close()
