"""Thin aiogram handlers: parse the update, call a service, deliver the reply.

Routers, in order: group chats, /start, clinicians, patients, everybody else.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.enums import ChatType, ContentType
from aiogram.filters import CommandObject, CommandStart, Filter
from aiogram.types import CallbackQuery, Message

from bot.app import App
from bot.channels import Reply
from bot.commands import CLINICIAN_COMMANDS, PATIENT_COMMANDS, PLAN_COMMANDS, split_command
from bot.flows.model import Choice, Input, OutMessage, Text, Unsupported
from bot.numbers import row_id
from bot.services import reminders
from bot.services.clinicians import AGENDA_PREFIX
from bot.services.patients import ERASE_PREFIX
from bot.services.readaloud import REPLAY
from bot.services.safety import CHECK_PREFIX
from bot.services.voice_answers import CONFIRM_PREFIX
from bot.storage.models import Clinician, Patient
from bot.telegram.channel import QUESTION_PREFIX, TelegramChannel

log = logging.getLogger(__name__)

UNREADABLE_KINDS: dict[str, str] = {ContentType.VOICE: "voice"}


class Responder:
    """Delivers a service reply, then records what the patient has seen and drains the outbox."""

    def __init__(self, app: App, channel: TelegramChannel) -> None:
        self.app = app
        self.channel = channel

    async def send(self, reply: Reply, *, origin_message_id: int | None = None) -> None:
        messages = await self.app.read_aloud.attach(reply.patient_id, reply.messages)
        if messages:
            await self.channel.deliver(
                reply.chat_id, messages, origin_message_id=origin_message_id, wait_on_limit=True
            )
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
    def __init__(self, role: type) -> None:
        self.role = role

    async def __call__(self, event: object, actor: Clinician | Patient | None = None) -> bool:
        return isinstance(actor, self.role)


def parse_message(message: Message) -> Input | str:
    """A patient's message as flow input, or a command name (str)."""
    if message.text is not None:
        command = split_command(message.text)
        if command is not None:
            return PATIENT_COMMANDS.get(command[0], "unknown")
        return Text(message.text)
    kind = UNREADABLE_KINDS.get(message.content_type, str(message.content_type))
    return Unsupported(kind, text=message.caption)


def parse_choice(data: str | None) -> Choice:
    """``q:<seq>:<value>``; anything malformed becomes a tap on a non-existing old question."""
    try:
        _, seq, value = (data or "").split(":", 2)
        return Choice(int(seq), value)
    except ValueError:
        return Choice(-1, "")


def build_routers(responder: Responder) -> list[Router]:
    app = responder.app
    groups = Router(name="groups")
    start = Router(name="start")
    clinicians = Router(name="clinicians")
    patients = Router(name="patients")
    others = Router(name="others")
    for router in (start, clinicians, patients, others):
        router.message.filter(F.chat.type == ChatType.PRIVATE)
        router.edited_message.filter(F.chat.type == ChatType.PRIVATE)
    clinicians.message.filter(IsRole(Clinician))
    clinicians.callback_query.filter(IsRole(Clinician))
    clinicians.edited_message.filter(IsRole(Clinician))
    patients.message.filter(IsRole(Patient))
    patients.callback_query.filter(IsRole(Patient))
    patients.edited_message.filter(IsRole(Patient))

    # -- group chats: the bot works one-to-one only ------------------------------------
    @groups.message(F.chat.type != ChatType.PRIVATE)
    async def group_message(message: Message) -> None:
        await responder.send(Reply(message.chat.id, [_note(app, "bad.group_chat")]))

    # -- /start, with or without an invite token -----------------------------------------
    @start.message(CommandStart())
    async def on_start(message: Message, command: CommandObject, update_id: int) -> None:
        assert message.from_user is not None
        reply = await app.onboarding.start(
            message.from_user.id, message.chat.id, (command.args or "").strip() or None, update_id
        )
        await responder.send(reply)

    # -- clinicians -----------------------------------------------------------------------
    @clinicians.message()
    async def clinician_message(message: Message, actor: Clinician) -> None:
        command = split_command(message.text or "")
        name = CLINICIAN_COMMANDS.get(command[0]) if command else None
        if name == "agenda":
            reply = await app.clinicians.upcoming(actor)
        elif name == "listen" and command is not None:
            reply = await app.clinicians.listen(actor, command[1])
        elif name in PLAN_COMMANDS and command is not None:
            reply = await app.clinicians.plan_command(actor, name, command[1])
        elif name == "help":
            reply = app.clinicians.help(actor)
        else:
            reply = app.clinicians.unknown(actor)
        await responder.send(reply)

    @clinicians.callback_query(F.data.startswith(AGENDA_PREFIX))
    async def clinician_open(callback: CallbackQuery, actor: Clinician) -> None:
        await callback.answer()
        consult_id = row_id((callback.data or "")[len(AGENDA_PREFIX) :])
        await responder.send(await app.clinicians.open(actor, consult_id or -1))

    @clinicians.callback_query()
    async def clinician_other_tap(callback: CallbackQuery, actor: Clinician) -> None:
        await callback.answer()
        await responder.send(app.clinicians.unknown(actor))

    @clinicians.edited_message()
    async def clinician_edit(message: Message, actor: Clinician) -> None:
        await responder.send(app.clinicians.unknown(actor))

    # -- patients ---------------------------------------------------------------------------
    @patients.message(F.voice)
    async def patient_voice(message: Message, actor: Patient, update_id: int, bot: Bot) -> None:
        voice = message.voice
        assert voice is not None

        async def fetch() -> bytes:
            data = await bot.download(voice.file_id)
            return data.read() if data is not None else b""

        await responder.send(await app.voice_answers.receive(actor, voice.duration, fetch, update_id))

    @patients.message()
    async def patient_message(message: Message, actor: Patient, update_id: int) -> None:
        parsed = parse_message(message)
        if isinstance(parsed, str):
            reply = await app.patients.command(actor, parsed, update_id, text=message.text)
        else:
            reply = await app.patients.handle(actor, parsed, update_id)
        await responder.send(reply)

    @patients.edited_message()
    async def patient_edit(message: Message, actor: Patient, update_id: int) -> None:
        edited = Unsupported("edited", text=message.text or message.caption)
        await responder.send(await app.patients.handle(actor, edited, update_id))

    @patients.callback_query(F.data.startswith(ERASE_PREFIX))
    async def patient_erase(callback: CallbackQuery, actor: Patient) -> None:
        reply = await app.patients.erase(actor, callback.data or "")
        await responder.answer_tap(callback, reply)

    @patients.callback_query(F.data.startswith(CONFIRM_PREFIX))
    async def patient_transcript(callback: CallbackQuery, actor: Patient, update_id: int) -> None:
        reply = await app.voice_answers.confirm(actor, callback.data or "", update_id)
        await responder.answer_tap(callback, reply)

    @patients.callback_query(F.data == REPLAY)
    async def patient_replay(callback: CallbackQuery, actor: Patient) -> None:
        await callback.answer()
        voice = callback.message.voice if isinstance(callback.message, Message) else None
        if voice is None or callback.message is None:
            await responder.send(Reply(actor.telegram_chat_id or 0, [_note(app, "voice.replay_gone")]))
            return
        markup = callback.message.reply_markup if isinstance(callback.message, Message) else None
        await responder.channel.replay(callback.message.chat.id, voice.file_id, markup)

    @patients.callback_query(F.data.startswith(CHECK_PREFIX))
    async def patient_check(callback: CallbackQuery, actor: Patient, update_id: int) -> None:
        reply = await app.patients.answer_check(actor, callback.data or "", update_id)
        await responder.answer_tap(callback, reply)

    @patients.callback_query(F.data.startswith(reminders.PREFIX))
    async def patient_reminder_tap(callback: CallbackQuery, actor: Patient, update_id: int) -> None:
        parsed = reminders.parse_data(callback.data or "")
        rid, op = parsed if parsed else (-1, "")
        await responder.answer_tap(callback, await app.reminders.tap(actor, rid, op, update_id))

    @patients.callback_query()
    async def patient_tap(callback: CallbackQuery, actor: Patient, update_id: int) -> None:
        data = callback.data or ""
        choice = parse_choice(data) if data.startswith(QUESTION_PREFIX) else Choice(-1, data)
        reply = await app.patients.handle(actor, choice, update_id)
        await responder.answer_tap(callback, reply)

    # -- nobody we know -----------------------------------------------------------------------
    @others.message()
    @others.edited_message()
    async def unknown_message(message: Message) -> None:
        await responder.send(app.onboarding.stranger(message.chat.id, message.text or message.caption))

    @others.callback_query(F.data.startswith(CHECK_PREFIX))
    async def unknown_check(callback: CallbackQuery) -> None:
        await callback.answer()
        if callback.message is not None:
            await responder.send(app.onboarding.stranger_check(callback.message.chat.id, callback.data or ""))

    @others.callback_query()
    async def unknown_tap(callback: CallbackQuery) -> None:
        await callback.answer()
        if callback.message is not None and app.onboarding.stranger_may_hear(callback.message.chat.id):
            await responder.send(Reply(callback.message.chat.id, [_note(app, "unknown_user")]))

    return [groups, start, clinicians, patients, others]


def _note(app: App, key: str) -> OutMessage:
    return OutMessage(app.catalog.t(key))
