"""The durable inbox: every update is committed to SQLite before Telegram hears it was received.

Long polling (``python -m bot run``): each ``getUpdates`` batch is stored raw in one transaction;
only then does the next ``getUpdates`` confirm it (its offset). Webhook mode answers Telegram's
POST only after the same commit. Per-chat workers then handle the stored updates: chats in
parallel (at most ``concurrency`` at once), strictly in order within a chat. An update is marked
handled in the transaction that records its answer (``UnitOfWork.updates.mark_processed``), so a crash
loses nothing that was acknowledged and applies nothing twice: on restart, unhandled rows go first.

An update that cannot be read (a field from another Bot API version) is marked failed and skipped;
the log names its id and the failing field paths, never its content.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramConflictError, TelegramNetworkError
from aiogram.methods.base import TelegramMethod
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot.storage.models import InboxRow
from bot.storage.ports import Inbox

log = logging.getLogger(__name__)

POLL_TIMEOUT = 25  # seconds Telegram holds a getUpdates open when there is nothing new
BACKOFF_MAX = 30.0


class GetRawUpdates(TelegramMethod[list[dict[str, Any]]]):
    """``getUpdates`` without parsing: one update aiogram cannot read must not hide the batch."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


def chat_key(raw: dict[str, Any]) -> int | None:
    """The chat an update belongs to (its order is kept per chat); None when it has none."""
    for field in ("message", "edited_message", "callback_query", "my_chat_member", "channel_post"):
        event = raw.get(field)
        if not isinstance(event, dict):
            continue
        chat = event.get("chat")
        if chat is None and isinstance(event.get("message"), dict):
            chat = event["message"].get("chat")
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return int(chat["id"])
        sender = event.get("from")
        if isinstance(sender, dict) and isinstance(sender.get("id"), int):
            return int(sender["id"])
    return None


def _failed_fields(exc: ValidationError) -> str:
    """Where parsing failed, as field paths and error types: no values (they hold patient words)."""
    parts = [".".join(str(p) for p in err["loc"]) + ":" + err["type"] for err in exc.errors()[:5]]
    return ", ".join(parts)


class InboxWorkers:
    """Handles stored updates: one worker per chat with pending updates, bounded overall."""

    def __init__(self, inbox: Inbox, bot: Bot, dp: Dispatcher, concurrency: int = 64) -> None:
        self.inbox = inbox
        self.bot = bot
        self.dp = dp
        self._slots = asyncio.Semaphore(concurrency)
        self._chats: dict[int, asyncio.Queue[InboxRow]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, rows: list[InboxRow]) -> None:
        for row in rows:
            key = row.chat_key if row.chat_key is not None else -row.update_id  # no chat: alone
            queue = self._chats.get(key)
            if queue is None:
                queue = self._chats[key] = asyncio.Queue()
                task = asyncio.get_running_loop().create_task(self._chat_worker(key, queue))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            queue.put_nowait(row)

    async def drain(self, timeout: float = 15.0) -> bool:
        """Wait until every submitted update is handled (shutdown, tests); True when all were."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    async def _chat_worker(self, key: int, queue: asyncio.Queue[InboxRow]) -> None:
        """The chat's rows one after another; new rows for the chat join this queue meanwhile.
        Cancelled at shutdown, what is left stays pending in the inbox for the next start."""
        try:
            while not queue.empty():
                row = queue.get_nowait()
                async with self._slots:
                    await self.handle(row)
        finally:
            if self._chats.get(key) is queue:
                del self._chats[key]

    async def handle(self, row: InboxRow) -> None:
        try:
            update = Update.model_validate(row.payload, context={"bot": self.bot})
        except ValidationError as exc:
            log.warning("update %s could not be read (%s); skipped", row.update_id, _failed_fields(exc))
            await self.inbox.failed(row.update_id, "unreadable")
            return
        try:
            # The guard marks the update handled (``UnitOfWork.updates.mark_processed``) in the answer's
            # transaction, or when it skips an update that was handled before.
            await self.dp.feed_update(self.bot, update)
        except Exception as exc:  # the guard answers users; this is a storage or wiring failure
            log.error(
                "update %s was not handled: %s; kept for the next start", row.update_id, type(exc).__name__
            )
            return


async def store_and_submit(inbox: Inbox, workers: InboxWorkers, raws: list[dict[str, Any]]) -> int:
    """Commit a batch, then hand it to the workers; returns the highest update id stored."""
    rows = await inbox.store([(int(r["update_id"]), chat_key(r), r) for r in raws if "update_id" in r])
    workers.submit(rows)
    return max((int(r["update_id"]) for r in raws if "update_id" in r), default=0)


async def poll(
    bot: Bot,
    inbox: Inbox,
    workers: InboxWorkers,
    stop: asyncio.Event,
    allowed_updates: list[str] | None = None,
    timeout: int = POLL_TIMEOUT,
) -> None:
    """Long polling into the inbox until ``stop`` is set. A batch's offset is confirmed (by the
    next getUpdates) only after the batch was committed."""
    workers.submit(await inbox.pending())  # what a previous run stored but did not handle
    offset = await inbox.next_offset()
    backoff = 1.0
    while not stop.is_set():
        method = GetRawUpdates(offset=offset or None, timeout=timeout, allowed_updates=allowed_updates)
        request = asyncio.ensure_future(bot(method, request_timeout=timeout + 10))
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({request, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if request not in done:
            request.cancel()  # nothing of this poll was stored, so nothing is confirmed
            stopping.cancel()
            break
        stopping.cancel()
        try:
            raws = request.result()
        except TelegramConflictError:
            log.error("another process or a webhook takes these updates; retry in %.0fs", BACKOFF_MAX)
            await _sleep(stop, BACKOFF_MAX)
            continue
        except (TelegramNetworkError, TelegramAPIError, TimeoutError) as exc:
            log.warning("getUpdates failed (%s); retrying in %.0fs", type(exc).__name__, backoff)
            await _sleep(stop, backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
            continue
        backoff = 1.0
        if raws:
            offset = max(offset, await store_and_submit(inbox, workers, raws) + 1)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024  # an update is JSON text; files are fetched separately


async def serve_webhook(
    bot: Bot,
    inbox: Inbox,
    workers: InboxWorkers,
    stop: asyncio.Event,
    *,
    url: str,
    secret: str,
    host: str,
    port: int,
    path: str,
    allowed_updates: list[str] | None = None,
) -> None:
    """Webhook mode until ``stop`` is set: each POST from Telegram (with the secret header) is
    committed to the inbox before it is answered 200; a failed commit answers 500 and Telegram
    sends it again. The same workers handle it as in long polling."""

    async def receive(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), secret.encode()):
            return web.Response(status=401)
        try:
            raw = await request.json()
        except ValueError:
            return web.Response(status=400)
        if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
            return web.Response(status=400)
        await store_and_submit(inbox, workers, [raw])
        return web.Response(status=200)

    workers.submit(await inbox.pending())
    server = web.Application(client_max_size=MAX_UPDATE_BYTES)
    server.router.add_post(path, receive)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    await bot.set_webhook(
        url=url, secret_token=secret, allowed_updates=allowed_updates, drop_pending_updates=False
    )
    log.info("webhook listening on %s:%s%s", host, port, path)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # Telegram keeps what it could not deliver and sends it again later
