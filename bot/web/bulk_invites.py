"""Invites in bulk in the web app: paste a list from the HIS or upload a CSV (``/invite/bulk``).

The list is checked as a whole (``bot.services.bulk_invites``): one bad row invites nobody and
every problem is shown with its line. After an import the page holds one printable letter per new
patient (QR code, link, plain instructions) and the text for an SMS or e-mail; the links are shown
this once (only their hash is stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.content import Catalog
from bot.services.bulk_invites import BulkInvites, BulkResult, describe
from bot.services.invites import deep_link

if TYPE_CHECKING:
    from bot.app import App
    from bot.web.server import WebApp

MAX_UPLOAD = 1_000_000


@dataclass(frozen=True)
class Letter:
    name: str
    when: str
    link: str
    expires: str
    qr: str
    sms: str


def letters(app: App, result: BulkResult, qr: Any, username: str | None = None) -> list[Letter]:
    """One letter (and SMS text) per patient invited; ``qr`` makes the SVG code of a link."""
    catalog: Catalog = app.catalog
    username = username or app.settings.bot_username or "<BOT_USERNAME>"
    zone = app.settings.zone
    out = []
    for item in result.invited:
        link = deep_link(username, item.invite.token)
        when = catalog.format_when(item.row.consult_at.astimezone(zone))
        expires = catalog.format_when(item.invite.expires_at.astimezone(zone), "short")
        sms = catalog.t("bulk_invite.sms", when=when, link=link, expires=expires)
        out.append(Letter(item.row.name, when, link, expires, qr(link), sms))
    return out


class BulkInvitePages:
    def __init__(self, web_app: WebApp) -> None:
        self.web = web_app
        self.app = web_app.app

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/invite/bulk", self.form_page), web.post("/invite/bulk", self.upload)]

    async def form_page(self, request: web.Request) -> web.Response:
        return self.web.page(request, "invite_bulk.html.j2", problems=[], result=None, letters=[], pasted="")

    async def upload(self, request: web.Request) -> web.Response:
        from bot.web.server import SESSION, qr_svg

        session = request[SESSION]
        form = await self.web.form(request)
        text = str(form.get("list") or "")
        upload = form.get("file")
        if upload is not None and hasattr(upload, "file"):
            data = upload.file.read(MAX_UPLOAD + 1)
            if data:
                try:
                    text = data.decode("utf-8-sig")
                except UnicodeDecodeError:
                    text = data.decode("cp1252", errors="replace")  # an older Excel export
        bulk = BulkInvites(self.app.repo, self.app.invites, self.app.settings.zone)
        result = await bulk.run(
            session.account.practice_id, text, default_clinician=session.account.clinician_id
        )
        t = self.app.catalog.t
        if not result.ok:
            return self.web.page(
                request,
                "invite_bulk.html.j2",
                status=400,
                problems=describe(result.problems, t),
                result=None,
                letters=[],
                pasted=text if len(text) < 100_000 else "",
            )
        for item in result.invited:
            consult = await self.app.repo.consults.get(item.invite.consult_id)
            await self.web.audit(request, "create_invite", consult, "bulk")
        zone = self.app.settings.zone
        skipped = [
            t(
                "poh_bulk.skipped_row",
                line=s.row.line,
                name=s.row.name,
                when=self.app.catalog.format_when(s.row.consult_at.astimezone(zone), "short"),
                consult=s.consult_id,
            )
            for s in result.skipped
        ]
        return self.web.page(
            request,
            "invite_bulk.html.j2",
            problems=[],
            result={"invited": len(result.invited), "skipped": skipped},
            letters=letters(self.app, result, qr_svg),
            pasted="",
        )
