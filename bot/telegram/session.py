"""The Bot API session: aiogram's aiohttp session, with the response types kept alive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import Response
from aiogram.methods import TelegramMethod

if TYPE_CHECKING:
    from aiogram import Bot


class Session(AiohttpSession):
    """aiogram reads every answer as ``Response[<the method's return type>]``. Pydantic caches that
    parametrised class only weakly, so after each garbage collection it is built again: about 5 ms
    of the event loop per Bot API call under load, a fifth of the bot's busy time at 100 patients.
    Keeping one reference per return type makes every later lookup a cache hit."""

    _kept: ClassVar[dict[Any, type]] = {}

    def check_response(
        self, bot: Bot, method: TelegramMethod[Any], status_code: int, content: str
    ) -> Response[Any]:
        returning = method.__returning__
        if returning not in self._kept:
            self._kept[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)
