"""``python -m bot demo``: the same intake in the terminal, through the same services.

The console adapter numbers the buttons; the user types a number, a button's text or free
text. With ``--answers FILE`` the answers come from a YAML list instead of the keyboard.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TextIO

import yaml

from bot.app import App, build_app
from bot.callbacks import CheckTap, EraseTap
from bot.channels import Reply
from bot.config import Settings
from bot.flows.engine import DECLINED, DONE
from bot.flows.model import Button, Choice, OutMessage, Text
from bot.numbers import whole_number

DEMO_USER = 1000001
HINT = (
    "[demo] Type a button's number or text, or free text. "
    "Commands: /terug /pauze /help /stop /wis. Ctrl-D quits."
)


def _plain(label: str) -> str:
    return re.sub(r"[^\w]+", " ", label.casefold()).strip()


class ConsoleChannel:
    """Prints messages; remembers the last buttons so a typed number or label can tap them."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.buttons: list[Button] = []
        self.seq: int | None = None
        self._next_id = 1

    async def deliver(
        self, chat_id: int, messages: Sequence[OutMessage], *, origin_message_id: int | None = None
    ) -> list[int]:
        ids = []
        for message in messages:
            if message.voice is not None:
                continue  # a terminal cannot play voice notes; the text was printed
            print(f"\n🤖 {message.text}", file=self.out)
            if message.buttons:
                self.buttons = [b for row in message.buttons for b in row]
                self.seq = message.seq
                for number, button in enumerate(self.buttons, 1):
                    print(f"   [{number}] {button.label}", file=self.out)
            ids.append(self._next_id)
            self._next_id += 1
        return ids

    def tap(self, line: str) -> Button | None:
        """The button a typed line means: its number, or its text without emoji."""
        wanted = line.strip()
        number = whole_number(wanted)
        if number is not None and any(b.value == wanted for b in self.buttons):
            return next(b for b in self.buttons if b.value == wanted)  # a score button
        if number is not None and 1 <= number <= len(self.buttons):
            return self.buttons[number - 1]
        plain = _plain(wanted)
        return next((b for b in self.buttons if plain and _plain(b.label) == plain), None)


def load_answers(path: Path) -> list[str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = data.get("answers") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise SystemExit(f"{path}: expected a list under 'answers'")
    return [str(item) for item in items]


async def _step(app: App, channel: ConsoleChannel, patient_id: int, line: str) -> Reply:
    patient = await app.repo.patients.get(patient_id)
    assert patient is not None
    action = app.catalog.commands.of_patient(line)
    if action is not None:
        return await app.patients.command(patient, action, text=line)
    button = channel.tap(line)
    if button is not None and CheckTap.matches(button.value):
        return await app.patients.answer_check(patient, CheckTap.unpack(button.value))
    if button is not None and EraseTap.matches(button.value):
        return await app.patients.erase(patient, EraseTap.unpack(button.value))
    if button is not None and channel.seq is not None:
        return await app.patients.handle(patient, Choice(channel.seq, button.value))
    return await app.patients.handle(patient, Text(line))


async def run_demo(
    settings: Settings, answers: list[str] | None, out: TextIO = sys.stdout, *, simple: bool = False
) -> int:
    """Run one intake; returns 0 when it was completed, 2 when it stopped early."""
    app = await build_app(settings)
    channel = ConsoleChannel(out)
    outbox = app.attach_channel(channel)
    try:
        practice_id = await app.repo.practices.add(app.catalog.t("demo.practice_name"), app.clock.now())
        local_day = (app.clock.now().astimezone(settings.zone) + timedelta(days=7)).date()
        consult_at = datetime.combine(local_day, time(10, 0), tzinfo=settings.zone)
        # A terminal cannot play voice notes: read-aloud is off in the demo.
        invite = await app.invites.invite_patient(practice_id, consult_at, read_aloud=False, simple=simple)
        print(HINT, file=out)
        reply = await app.onboarding.start(DEMO_USER, DEMO_USER, invite.token, None)
        await channel.deliver(reply.chat_id, reply.messages)
        lines: Iterator[str] = iter(answers) if answers is not None else _keyboard(out)
        finished = False
        for line in lines:
            if answers is not None:
                print(f"\n👤 {line}", file=out)
            with app.repo.scope():  # one line is one update: the patient is read once
                reply = await _step(app, channel, invite.patient_id, line)
                await channel.deliver(reply.chat_id, reply.messages)
            await outbox.flush()
            conv = await app.repo.conversations.get(invite.patient_id)
            step = conv.state["step"] if conv else None
            if step in (DONE, DECLINED) or conv is None:
                finished = step == DONE
                break
        print("\n" + "=" * 72, file=out)
        print("[demo] The agenda as the POH receives it:\n", file=out)
        print(await app.agenda.text(invite.consult_id) or "", file=out)
        print(f"[demo] Database: {settings.database_path}", file=out)
        return 0 if finished else 2
    finally:
        await app.close()


def _keyboard(out: TextIO) -> Iterator[str]:
    while True:
        try:
            yield input("\n> ")
        except EOFError:
            print("", file=out)
            return


def demo_settings(base: Settings, db: Path | None) -> Settings:
    path = db or Path(tempfile.mkdtemp(prefix="voorgesprek-demo-")) / "demo.sqlite3"
    return base.model_copy(update={"database_path": path})
