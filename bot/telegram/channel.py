"""Delivering channel-neutral messages through the Telegram Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import CALLBACK_DATA_LIMIT, QuestionTap
from bot.channels import DeliveryBlocked, DeliveryRejected, DeliveryRetry
from bot.flows.model import OutMessage

log = logging.getLogger(__name__)

MAX_INLINE_WAIT = 10.0  # seconds a direct reply may wait on a rate limit


def callback_data(message: OutMessage, value: str) -> str:
    """Question buttons carry their question number: ``q:<seq>:<value>``."""
    data = QuestionTap(seq=message.seq, value=value).pack() if message.seq is not None else value
    if len(data.encode("utf-8")) > CALLBACK_DATA_LIMIT:
        raise ValueError("callback data over Telegram's 64-byte limit")
    return data


def keyboard(message: OutMessage) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.label, callback_data=callback_data(message, b.value)) for b in row]
            for row in message.buttons
        ]
    )


class TelegramChannel:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def deliver(
        self,
        chat_id: int,
        messages: Sequence[OutMessage],
        *,
        origin_message_id: int | None = None,
        wait_on_limit: bool = False,
    ) -> list[int]:
        ids: list[int] = []
        for message in messages:
            ids.append(await self._one(chat_id, message, origin_message_id, wait_on_limit))
        return ids

    async def _one(self, chat_id: int, message: OutMessage, origin: int | None, wait: bool) -> int:
        for _ in range(3):
            try:
                return await self._call(chat_id, message, origin)
            except TelegramRetryAfter as exc:
                if not wait or exc.retry_after > MAX_INLINE_WAIT:
                    raise DeliveryRetry(exc.retry_after) from exc
                await asyncio.sleep(exc.retry_after)
            except TelegramForbiddenError as exc:
                raise DeliveryBlocked() from exc
            except TelegramBadRequest as exc:
                raise DeliveryRejected() from exc
            except (TelegramNetworkError, TelegramServerError) as exc:
                raise DeliveryRetry(5.0) from exc
        raise DeliveryRetry(MAX_INLINE_WAIT)

    async def _call(self, chat_id: int, message: OutMessage, origin: int | None) -> int:
        markup = keyboard(message)
        if message.voice is not None:
            note = BufferedInputFile(message.voice, filename="voorlezen.ogg")
            return (await self.bot.send_voice(chat_id=chat_id, voice=note, reply_markup=markup)).message_id
        if message.edit and origin is not None:
            try:
                await self.bot.edit_message_text(
                    chat_id=chat_id, message_id=origin, text=message.text, reply_markup=markup
                )
                return origin
            except TelegramBadRequest as exc:
                if "not modified" in exc.message:
                    return origin
                log.info("edit failed (%s); sending anew", type(exc).__name__)
        sent = await self.bot.send_message(chat_id=chat_id, text=message.text, reply_markup=markup)
        return sent.message_id

    async def replay(self, chat_id: int, file_id: str, markup: InlineKeyboardMarkup | None) -> None:
        """Send a voice note again by its Telegram file id ("🔊 Nog een keer")."""
        try:
            await self.bot.send_voice(chat_id=chat_id, voice=file_id, reply_markup=markup)
        except TelegramRetryAfter as exc:
            raise DeliveryRetry(exc.retry_after) from exc
        except TelegramForbiddenError as exc:
            raise DeliveryBlocked() from exc

    async def clear_buttons(self, chat_id: int, message_id: int) -> None:
        """Remove the buttons of an answered question, so old taps become rare."""
        with contextlib.suppress(TelegramBadRequest, TelegramNetworkError, TelegramRetryAfter):
            await self.bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=None
            )
