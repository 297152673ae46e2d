"""Is Telegram reachable with our token? One ``getMe`` call with a short timeout (for ``health``)."""

from __future__ import annotations

import aiohttp

from bot.services.health import TelegramProbe, TelegramUnreachable

TELEGRAM = "https://api.telegram.org"


def telegram_probe(token: str | None, api_url: str | None) -> TelegramProbe | None:
    """None without a token (the check then says "unknown"). ``api_url``: TELEGRAM_API_URL."""
    if not token:
        return None
    url = f"{(api_url or TELEGRAM).rstrip('/')}/bot{token}/getMe"

    async def get_me(timeout: float) -> None:
        # Errors are named by type or status only: their text could carry the URL, and so the token.
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                session.get(url) as response,
            ):
                status = response.status
                body = await response.json(content_type=None)
        except TimeoutError:
            raise TelegramUnreachable(f"no answer within {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise TelegramUnreachable(f"not reachable ({type(exc).__name__})") from None
        except ValueError:
            raise TelegramUnreachable("the answer is not JSON") from None
        if status == 401:
            raise TelegramUnreachable("the token was refused (401)")
        if status != 200 or not isinstance(body, dict) or body.get("ok") is not True:
            raise TelegramUnreachable(f"answer {status}")

    return get_me
