"""``python -m bot run``: long polling with graceful shutdown."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommand

from bot.app import App
from bot.commands import MENU
from bot.config import Settings
from bot.telegram.channel import TelegramChannel
from bot.telegram.handlers import Responder, build_routers
from bot.telegram.middleware import UpdateGuard
from scheduler.wakeup import start_wakeups

log = logging.getLogger(__name__)


def make_bot(settings: Settings) -> Bot:
    if settings.bot_token is None:
        raise SystemExit("BOT_TOKEN is not set. Put it in .env (see .env.example).")
    session = (
        AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
        if settings.telegram_api_url
        else AiohttpSession()
    )
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(link_preview_is_disabled=True),
    )


@dataclass(frozen=True)
class Wiring:
    dp: Dispatcher
    responder: Responder
    guard: UpdateGuard


def build_dispatcher(app: App, bot: Bot) -> Wiring:
    channel = TelegramChannel(bot)
    app.attach_channel(channel)
    responder = Responder(app, channel)
    guard = UpdateGuard(app)
    dp = Dispatcher()
    dp.update.outer_middleware(guard)
    dp.include_routers(*build_routers(responder))

    async def on_startup(bot: Bot) -> None:
        await bot.delete_webhook(drop_pending_updates=False)
        await bot.set_my_commands(
            [BotCommand(command=c, description=app.catalog.t(f"commands.{c}")) for c in MENU]
        )
        await resume_after_restart(app, responder)

    dp.startup.register(on_startup)
    return Wiring(dp, responder, guard)


async def resume_after_restart(app: App, responder: Responder) -> None:
    """Show questions that were committed but maybe never delivered; send pending outbox rows."""
    pending = await app.patients.pending_prompts()
    for reply in pending:
        try:
            await responder.send(reply)
        except Exception as exc:
            log.warning("could not resume a conversation: %s", type(exc).__name__)
    if pending:
        log.info("resumed %d conversations after restart", len(pending))
    await app.tick()


async def run_polling(app: App) -> None:
    try:
        bot = make_bot(app.settings)
    except BaseException:
        await app.close()
        raise
    wiring = build_dispatcher(app, bot)
    assert app.outbox is not None
    wakeups = start_wakeups(app.tick, app.settings.outbox_interval_seconds)
    try:
        me = await bot.get_me()
        log.info("bot @%s starts polling", me.username)
        # Updates are handled one after another: aiogram then confirms an update's offset only
        # after it was handled, so a crash never loses an acknowledged answer.
        await wiring.dp.start_polling(
            bot, handle_as_tasks=False, handle_signals=True, close_bot_session=False
        )
    finally:
        # SIGTERM/SIGINT: polling has stopped; let the update in hand finish, then close.
        wakeups.shutdown(wait=False)
        await wiring.guard.drain()
        await app.stop_ticks()
        try:
            await app.outbox.close()
        except TimeoutError:
            log.warning("outbox sends still running at shutdown; they stay pending")
        await bot.session.close()
        await app.close()
        log.info("bot stopped")
