"""Simulated patients for end-to-end tests and the load benchmark: answer what the bot asks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.content import Catalog
from bot.testing.fake_telegram import FakeTelegram

_t = Catalog().t  # the labels the bot shows (content/nl/messages.yaml), never written out here
# The button a patient taps when it is offered, in this order of preference.
PREFERRED = (_t("buttons.consent_yes"), "8", _t("buttons.answer_no"), _t("buttons.check_no"))
DONE = _t("buttons.done")
WORDS = "Mijn tuin en mijn kleinkinderen\nmijn rug"
SETTLE = 0.15  # a patient reads the new message before answering: no new message for this long


@dataclass
class SimulatedPatient:
    core: FakeTelegram
    user: int
    chose_a_topic: bool = False

    def answer(self) -> None:
        """Answer the bot's last message: a preferred button, a topic then Done at the
        priorities, or a few words where no button is offered."""
        last = self.core.to_chat(self.user)[-1]
        labels = [label for label, _ in last.buttons]
        if not labels:
            self.core.user_sends(self.user, WORDS)
            return
        if DONE in labels:
            label = labels[0] if not self.chose_a_topic else DONE
            self.chose_a_topic = True
        else:
            label = next((p for p in PREFERRED if p in labels), labels[0])
        self.core.user_taps(self.user, last, data=dict(last.buttons)[label])

    async def settle(self) -> None:
        seen = -1
        while seen != len(self.core.to_chat(self.user)):
            seen = len(self.core.to_chat(self.user))
            await asyncio.sleep(SETTLE)

    async def next_message(self, count: int, timeout: float = 120) -> None:
        await self.core.wait_for(lambda: len(self.core.to_chat(self.user)) > count, timeout=timeout)
