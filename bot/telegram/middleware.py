"""Update-level guards: exactly-once handling, who is writing, and no stack trace to users."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject, Update, User

from bot.app import App

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UpdateGuard(BaseMiddleware):
    """Outer middleware on every update.

    - skips an update that was already applied (Telegram redelivers after a crash);
    - finds the actor (clinician, patient or nobody) and passes it to handlers;
    - catches every error: logs its type and frames (never the message text) and answers
      the user kindly; the transaction of the failed step was rolled back, nothing half-done;
    - runs each update in its own task, shielded: a shutdown lets it finish (``drain``)
      instead of cancelling it between sending a message and recording that it was sent.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.inflight: set[asyncio.Task[Any]] = set()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for updates still being handled (at shutdown)."""
        if self.inflight:
            await asyncio.wait(set(self.inflight), timeout=timeout)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        repo = self.app.repo
        if await repo.updates.is_processed(event.update_id):
            log.info("update %s was already handled; skipped", event.update_id)
            await repo.updates.mark_processed(event.update_id, self.app.clock.now())  # its inbox row too
            return None
        task = asyncio.create_task(self._handle(handler, event, data))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        return await asyncio.shield(task)

    async def _handle(self, handler: Handler, event: Update, data: dict[str, Any]) -> Any:
        with self.app.repo.scope():  # the patient (or POH) is read once for the whole update
            return await self._handle_in_scope(handler, event, data)

    async def _handle_in_scope(self, handler: Handler, event: Update, data: dict[str, Any]) -> Any:
        repo = self.app.repo
        # aiogram's own context middleware (it runs before this one) found who and where.
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        chat_id = chat.id if chat else None
        data["actor"] = await self.app.onboarding.identify(user.id) if user else None
        data["update_id"] = event.update_id
        try:
            return await handler(event, data)
        except Exception as exc:
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("update %s failed with %s\n%s", event.update_id, type(exc).__name__, frames)
            await self._apologise(event, data, chat_id)
            return None
        finally:
            await repo.updates.mark_processed(event.update_id, self.app.clock.now())

    async def _apologise(self, update: Update, data: dict[str, Any], chat_id: int | None) -> None:
        bot = data.get("bot")
        if bot is None or chat_id is None:
            return
        text = self.app.catalog.t("bad.error")
        try:
            if update.callback_query is not None:
                await update.callback_query.answer()
            await bot.send_message(chat_id=chat_id, text=text)
        except Exception as exc:  # the channel itself may be down
            log.error("could not tell the user about the error: %s", type(exc).__name__)
