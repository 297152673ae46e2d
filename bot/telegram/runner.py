"""``python -m bot run``: long polling (or ``--webhook``) into the durable inbox, per-chat workers,
graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommand

from bot.app import App
from bot.config import Settings
from bot.telegram.channel import TelegramChannel
from bot.telegram.handlers import Responder, build_routers
from bot.telegram.inbox import InboxWorkers, poll, serve_webhook
from bot.telegram.middleware import UpdateGuard
from bot.telegram.session import Session
from scheduler.wakeup import start_wakeups

log = logging.getLogger(__name__)


def make_bot(settings: Settings) -> Bot:
    if settings.bot_token is None:
        raise SystemExit("BOT_TOKEN is not set. Put it in .env (see .env.example).")
    session = (
        Session(api=TelegramAPIServer.from_base(settings.telegram_api_url))
        if settings.telegram_api_url
        else Session()
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
    dp = Dispatcher(app=app, responder=responder)  # handlers get these by name
    dp.update.outer_middleware(guard)
    dp.include_routers(*build_routers())

    async def on_startup(bot: Bot) -> None:
        await bot.set_my_commands(
            [
                BotCommand(command=c, description=app.catalog.t(f"commands.{c}"))
                for c in app.catalog.commands.menu
            ]
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


async def run_polling(app: App, *, webhook: bool = False) -> None:
    """Long polling (the default) or webhook mode; both store each update before confirming it."""
    settings = app.settings
    if webhook and (not settings.webhook_url or settings.webhook_secret is None):
        await app.close()
        raise SystemExit("run --webhook needs WEBHOOK_URL and WEBHOOK_SECRET in .env (see .env.example).")
    try:
        bot = make_bot(app.settings)
    except BaseException:
        await app.close()
        raise
    wiring = build_dispatcher(app, bot)
    assert app.outbox is not None
    inbox = app.repo.inbox
    workers = InboxWorkers(inbox, bot, wiring.dp, concurrency=app.settings.update_concurrency)
    wakeups = start_wakeups(app.tick, app.settings.outbox_interval_seconds)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        me = await bot.get_me()
        # Load spaCy and the lexicons now, not on the first patient's words (seconds of a blocked loop).
        await asyncio.to_thread(app.analyzer)
        log.info("bot @%s starts polling", me.username)
        await wiring.dp.emit_startup(bot=bot)
        # Each update is committed to the inbox before Telegram hears it arrived; chats are handled
        # in parallel by per-chat workers, each chat in order (see bot/telegram/inbox.py).
        allowed = wiring.dp.resolve_used_update_types()
        if webhook:
            assert settings.webhook_url is not None and settings.webhook_secret is not None
            await serve_webhook(
                bot,
                inbox,
                workers,
                stop,
                url=settings.webhook_url,
                secret=settings.webhook_secret.get_secret_value(),
                host=settings.webhook_host,
                port=settings.webhook_port,
                path=settings.webhook_path,
                allowed_updates=allowed,
            )
        else:
            await bot.delete_webhook(drop_pending_updates=False)
            await poll(bot, inbox, workers, stop, allowed)
    finally:
        # SIGTERM/SIGINT: no new updates; let the ones in hand finish, then close.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        wakeups.shutdown(wait=False)
        if not await workers.drain():
            log.warning("updates still being handled at shutdown; they stay in the inbox")
        await wiring.guard.drain()
        await app.stop_ticks()
        try:
            await app.outbox.close()
        except TimeoutError:
            log.warning("outbox sends still running at shutdown; they stay pending")
        await inbox.prune()
        await bot.session.close()
        await app.close()
        log.info("bot stopped")
