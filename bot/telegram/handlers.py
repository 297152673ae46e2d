"""Thin aiogram handlers: parse the update, call a service, deliver the reply.

Routers, in order: group chats, /start, clinicians, patients, everybody else. Handlers are plain
module-level functions; what they need comes by name from the dispatcher's data (``app`` and
``responder``, set in :func:`bot.telegram.runner.build_dispatcher`; ``actor`` and ``update_id``
from the update guard; ``event_from_user`` from aiogram). Each button family is a typed class in
:mod:`bot.callbacks`, matched with :class:`Tapped`, which hands the handler the unpacked ``tap``.

Adding a command or a button: a handler function here and one line in :func:`build_routers`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, F, Router
from aiogram.enums import ChatType, ContentType
from aiogram.filters import CommandObject, CommandStart, Filter
from aiogram.types import CallbackQuery, Message, User

from bot.app import App
from bot.callbacks import (
    AgendaTap,
    ButtonData,
    CheckTap,
    EraseTap,
    QuestionTap,
    ReminderTap,
    ReplayTap,
    TranscriptTap,
)
from bot.channels import DeliveryRetry, Reply
from bot.commands import PLAN_COMMANDS, Commands
from bot.flows.model import Choice, Input, OutMessage, Text, Unsupported
from bot.storage.models import Clinician, Patient
from bot.telegram.channel import TelegramChannel

log = logging.getLogger(__name__)

UNREADABLE_KINDS: dict[str, str] = {ContentType.VOICE: "voice"}


class Responder:
    """Delivers a service reply, then records what the patient has seen and drains the outbox."""

    def __init__(self, app: App, channel: TelegramChannel) -> None:
        self.app = app
        self.channel = channel

    async def send(self, reply: Reply, *, origin_message_id: int | None = None) -> None:
        """Deliver at once; what Telegram holds back for longer than a few seconds (429 under a
        burst) goes through the outbox instead, in order, so no answer is dropped."""
        messages = await self.app.read_aloud.attach(reply.patient_id, reply.messages)
        for index, message in enumerate(messages):
            try:
                await self.channel.deliver(
                    reply.chat_id, [message], origin_message_id=origin_message_id, wait_on_limit=True
                )
            except DeliveryRetry as exc:
                later = [m for m in messages[index:] if m.voice is None]  # voice is made again then
                await self.app.patients.deliver_later(reply, later, exc.after_seconds)
                log.warning("reply held back by Telegram; %d message(s) to the outbox", len(later))
                break
        else:
            if reply.patient_id is not None and reply.seq is not None:
                await self.app.patients.delivered(reply.patient_id, reply.seq)
        if self.app.outbox is not None:
            self.app.outbox.kick()

    async def answer_tap(self, callback: CallbackQuery, reply: Reply) -> None:
        """Answer a button tap: the toast first, then the messages."""
        await callback.answer(reply.toast or None)
        origin = callback.message.message_id if callback.message else None
        moves_on = reply.messages and not any(m.edit for m in reply.messages)
        if origin is not None and moves_on:
            await self.channel.clear_buttons(reply.chat_id, origin)
        await self.send(reply, origin_message_id=origin)


class IsRole(Filter):
    """The update comes from a clinician or a patient (``actor``, found by the update guard)."""

    def __init__(self, role: type) -> None:
        self.role = role

    async def __call__(self, event: object, actor: Clinician | Patient | None = None) -> bool:
        return isinstance(actor, self.role)


class Tapped(Filter):
    """A tap on a button of one family. The handler gets ``tap``: the unpacked data, or None when
    it was forged, cut off or from an older version (services answer that as an old button)."""

    def __init__(self, family: type[ButtonData]) -> None:
        self.family = family

    async def __call__(self, callback: CallbackQuery) -> bool | dict[str, Any]:
        if not self.family.matches(callback.data):
            return False
        return {"tap": self.family.unpack(callback.data)}


def parse_message(message: Message, commands: Commands) -> Input | str:
    """A patient's message as flow input, or the action of a command (str)."""
    if message.text is not None:
        action = commands.of_patient(message.text)
        if action is not None:
            return action
        return Text(message.text, forwarded=message.forward_origin is not None)
    kind = UNREADABLE_KINDS.get(message.content_type, str(message.content_type))
    return Unsupported(kind, text=message.caption)


def parse_choice(data: str | None) -> Choice:
    """A tap under a flow question; anything malformed is a tap on a non-existing old question.
    Data without the question prefix (a very old button) is kept as the value of question -1."""
    tap = QuestionTap.unpack(data)
    if tap is not None:
        return Choice(tap.seq, tap.value)
    return Choice(-1, "" if QuestionTap.matches(data) else data or "")


# -- group chats: the bot works one-to-one only ------------------------------------------------
async def group_message(message: Message, app: App, responder: Responder) -> None:
    await responder.send(Reply(message.chat.id, [_note(app, "bad.group_chat")]))


# -- /start, with or without an invite token ----------------------------------------------------
async def on_start(
    message: Message,
    command: CommandObject,
    update_id: int,
    event_from_user: User,
    app: App,
    responder: Responder,
) -> None:
    token = (command.args or "").strip() or None
    await responder.send(await app.onboarding.start(event_from_user.id, message.chat.id, token, update_id))


# -- clinicians ---------------------------------------------------------------------------------
async def clinician_message(message: Message, actor: Clinician, app: App, responder: Responder) -> None:
    command = app.catalog.commands.of_clinician(message.text or "")
    name, rest = command if command else (None, "")
    if name == "agenda":
        reply = await app.clinicians.upcoming(actor)
    elif name == "listen":
        reply = await app.clinicians.listen(actor, rest)
    elif name in PLAN_COMMANDS:
        assert name is not None
        reply = await app.clinicians.plan_command(actor, name, rest)
    elif name == "help":
        reply = app.clinicians.help(actor)
    else:
        reply = app.clinicians.unknown(actor)
    await responder.send(reply)


async def clinician_open(
    callback: CallbackQuery, tap: AgendaTap | None, actor: Clinician, app: App, responder: Responder
) -> None:
    await callback.answer()
    await responder.send(await app.clinicians.open(actor, tap.consult if tap else -1))


async def clinician_other(
    event: Message | CallbackQuery, actor: Clinician, app: App, responder: Responder
) -> None:
    """A tap on a button that is not for a POH, or an edited message."""
    if isinstance(event, CallbackQuery):
        await event.answer()
    await responder.send(app.clinicians.unknown(actor))


# -- patients -------------------------------------------------------------------------------------
async def patient_voice(
    message: Message, actor: Patient, update_id: int, bot: Bot, app: App, responder: Responder
) -> None:
    voice = message.voice
    assert voice is not None

    async def fetch() -> bytes:
        data = await bot.download(voice.file_id)
        return data.read() if data is not None else b""

    await responder.send(await app.voice_answers.receive(actor, voice.duration, fetch, update_id))


async def patient_message(
    message: Message, actor: Patient, update_id: int, app: App, responder: Responder
) -> None:
    parsed = parse_message(message, app.catalog.commands)
    if isinstance(parsed, str):
        reply = await app.patients.command(actor, parsed, update_id, text=message.text)
    else:
        reply = await app.patients.handle(actor, parsed, update_id)
    await responder.send(reply)


async def patient_edit(
    message: Message, actor: Patient, update_id: int, app: App, responder: Responder
) -> None:
    edited = Unsupported("edited", text=message.text or message.caption)
    await responder.send(await app.patients.handle(actor, edited, update_id))


async def patient_erase(
    callback: CallbackQuery, tap: EraseTap | None, actor: Patient, app: App, responder: Responder
) -> None:
    await responder.answer_tap(callback, await app.patients.erase(actor, tap))


async def patient_transcript(
    callback: CallbackQuery,
    tap: TranscriptTap | None,
    actor: Patient,
    update_id: int,
    app: App,
    responder: Responder,
) -> None:
    await responder.answer_tap(callback, await app.voice_answers.confirm(actor, tap, update_id))


async def patient_replay(callback: CallbackQuery, actor: Patient, app: App, responder: Responder) -> None:
    await callback.answer()
    message = callback.message if isinstance(callback.message, Message) else None
    if message is None or message.voice is None:
        await responder.send(Reply(actor.telegram_chat_id or 0, [_note(app, "voice.replay_gone")]))
        return
    await responder.channel.replay(message.chat.id, message.voice.file_id, message.reply_markup)


async def patient_check(
    callback: CallbackQuery,
    tap: CheckTap | None,
    actor: Patient,
    update_id: int,
    app: App,
    responder: Responder,
) -> None:
    await responder.answer_tap(callback, await app.patients.answer_check(actor, tap, update_id))


async def patient_reminder(
    callback: CallbackQuery,
    tap: ReminderTap | None,
    actor: Patient,
    update_id: int,
    app: App,
    responder: Responder,
) -> None:
    await responder.answer_tap(callback, await app.reminders.tap(actor, tap, update_id))


async def patient_tap(
    callback: CallbackQuery, actor: Patient, update_id: int, app: App, responder: Responder
) -> None:
    """A tap under a flow question (or on any other old button)."""
    reply = await app.patients.handle(actor, parse_choice(callback.data), update_id)
    await responder.answer_tap(callback, reply)


# -- nobody we know -----------------------------------------------------------------------------
async def stranger_message(message: Message, app: App, responder: Responder) -> None:
    await responder.send(app.onboarding.stranger(message.chat.id, message.text or message.caption))


async def stranger_check(
    callback: CallbackQuery, tap: CheckTap | None, app: App, responder: Responder
) -> None:
    await callback.answer()
    if callback.message is not None:
        await responder.send(app.onboarding.stranger_check(callback.message.chat.id, tap))


async def stranger_tap(callback: CallbackQuery, app: App, responder: Responder) -> None:
    await callback.answer()
    if callback.message is not None and app.onboarding.stranger_may_hear(callback.message.chat.id):
        await responder.send(Reply(callback.message.chat.id, [_note(app, "unknown_user")]))


Handler = Callable[..., Awaitable[None]]


def build_routers() -> list[Router]:
    """The routers in the order they are tried, built fresh for each dispatcher (an aiogram
    router belongs to one dispatcher; tests and benchmarks run several in one process)."""
    groups = Router(name="groups")
    groups.message.register(group_message, F.chat.type != ChatType.PRIVATE)

    start = Router(name="start")
    start.message.register(on_start, CommandStart())

    clinicians = Router(name="clinicians")
    clinicians.message.register(clinician_message)
    clinicians.callback_query.register(clinician_open, Tapped(AgendaTap))
    clinicians.callback_query.register(clinician_other)
    clinicians.edited_message.register(clinician_other)

    patients = Router(name="patients")
    patients.message.register(patient_voice, F.voice)
    patients.message.register(patient_message)
    patients.edited_message.register(patient_edit)
    taps: list[tuple[Handler, type[ButtonData]]] = [
        (patient_erase, EraseTap),
        (patient_transcript, TranscriptTap),
        (patient_replay, ReplayTap),
        (patient_check, CheckTap),
        (patient_reminder, ReminderTap),
    ]
    for handler, family in taps:
        patients.callback_query.register(handler, Tapped(family))
    patients.callback_query.register(patient_tap)

    others = Router(name="others")
    others.message.register(stranger_message)
    others.edited_message.register(stranger_message)
    others.callback_query.register(stranger_check, Tapped(CheckTap))
    others.callback_query.register(stranger_tap)

    for router in (start, clinicians, patients, others):
        router.message.filter(F.chat.type == ChatType.PRIVATE)
        router.edited_message.filter(F.chat.type == ChatType.PRIVATE)
    for router, role in ((clinicians, Clinician), (patients, Patient)):
        for observer in (router.message, router.callback_query, router.edited_message):
            observer.filter(IsRole(role))
    return [groups, start, clinicians, patients, others]


def _note(app: App, key: str) -> OutMessage:
    return OutMessage(app.catalog.t(key))
