"""A bare aiogram bot for the load benchmark's side-by-side figure (``python -m bot bench load``).

It does per update what Voorgesprek does per answer, and nothing more: answer the tap, remove the
old buttons, send the next question with buttons; aiogram's own long polling with
``handle_as_tasks=True``. Run: ``python -m bot.testing.bare_bot`` with BOT_TOKEN and TELEGRAM_API_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

BUTTONS = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text=str(n), callback_data=str(n)) for n in range(1, 4)]]
)


def build() -> Dispatcher:
    dp = Dispatcher()

    @dp.message()
    async def on_message(message: Message) -> None:
        await message.answer("Vraag", reply_markup=BUTTONS)

    @dp.callback_query()
    async def on_tap(callback: CallbackQuery) -> None:
        await callback.answer()
        if callback.message is not None:
            chat = callback.message.chat.id
            bot = callback.bot
            assert bot is not None
            with contextlib.suppress(Exception):
                await bot.edit_message_reply_markup(
                    chat_id=chat, message_id=callback.message.message_id, reply_markup=None
                )
            await bot.send_message(chat, "Vraag", reply_markup=BUTTONS)

    return dp


async def main() -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"]))
    bot = Bot(os.environ["BOT_TOKEN"], session=session)
    await build().start_polling(bot, handle_as_tasks=True, handle_signals=True)


if __name__ == "__main__":
    asyncio.run(main())
