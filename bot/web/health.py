"""``GET /healthz`` for a monitor or load balancer: 200 when healthy, 503 when not, JSON either way.

No log-in needed and no patient data in it: the same checks and figures as ``python -m bot health
--json`` (bot/services/health.py). Telegram's answer is kept for 30 seconds, so polling this page
does not mean a getMe call each time.
"""

from __future__ import annotations

from aiohttp import web

from bot.app import App, build_health

PATH = "/healthz"


class Healthz:
    def __init__(self, app: App) -> None:
        self.health = build_health(app.settings, app.repo.health, app.clock)

    async def get(self, request: web.Request) -> web.Response:
        report = await self.health.report()
        return web.json_response(report.to_json(), status=200 if report.healthy else 503)
