"""What a service needs from a channel (Telegram, the terminal demo, tests).

Services return :class:`Reply` objects; a channel delivers them. Channel-specific errors are
translated into the two delivery errors below so that services and the outbox stay neutral.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.flows.model import OutMessage


class DeliveryRetry(Exception):
    """Try again later (rate limit, timeout, server error)."""

    def __init__(self, after_seconds: float) -> None:
        super().__init__(f"retry after {after_seconds}s")
        self.after_seconds = after_seconds


class DeliveryBlocked(Exception):
    """The recipient can no longer be reached (blocked the bot, deleted account)."""


class DeliveryRejected(Exception):
    """Telegram refused this message (400 Bad Request): sending it again would fail again."""


@dataclass
class Reply:
    """Messages for one chat, plus what the channel must report back after delivery."""

    chat_id: int
    messages: list[OutMessage] = field(default_factory=list)
    toast: str | None = None
    patient_id: int | None = None
    seq: int | None = None  # after delivery the patient has seen the question of this number


class Channel(Protocol):
    async def deliver(
        self, chat_id: int, messages: Sequence[OutMessage], *, origin_message_id: int | None = None
    ) -> list[int]:
        """Send (or, for ``edit`` messages, edit ``origin_message_id``); returns message ids."""
        ...
