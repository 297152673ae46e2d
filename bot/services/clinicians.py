"""The POH's side in Telegram: the consult list and agendas."""

from __future__ import annotations

import logging
from datetime import datetime, time

from bot.channels import Reply
from bot.clock import Clock
from bot.content import Catalog
from bot.flows.model import Button, OutMessage
from bot.services.agenda import AgendaService
from bot.storage.repo import Clinician, OutboxItem, Repository

log = logging.getLogger(__name__)

AGENDA_PREFIX = "ag:"


class ClinicianService:
    def __init__(self, repo: Repository, agenda: AgendaService, catalog: Catalog, clock: Clock) -> None:
        self.repo = repo
        self.agenda = agenda
        self.catalog = catalog
        self.clock = clock

    def _note(self, clinician: Clinician, key: str, **params: object) -> Reply:
        return Reply(clinician.telegram_chat_id or 0, [OutMessage(self.catalog.t(key, **params))])

    async def welcome(self, clinician: Clinician) -> Reply:
        practice = await self.repo.get_practice(clinician.practice_id)
        return self._note(clinician, "clinician.welcome", practice=practice.name if practice else "")

    def help(self, clinician: Clinician) -> Reply:
        return self._note(clinician, "clinician.help")

    def unknown(self, clinician: Clinician) -> Reply:
        return self._note(clinician, "clinician.unknown_text")

    async def upcoming(self, clinician: Clinician) -> Reply:
        """Consults from the start of today (practice time zone), with status and open buttons."""
        local_today = datetime.combine(
            self.clock.now().astimezone(self.agenda.zone).date(), time(), tzinfo=self.agenda.zone
        )
        consults = await self.repo.upcoming_consults(clinician.practice_id, local_today)
        if not consults:
            return self._note(clinician, "clinician.list_empty")
        t = self.catalog.t
        lines = [t("clinician.list_header")]
        buttons = []
        for c in consults:
            lines.append(
                t(
                    "clinician.list_line",
                    id=c.id,
                    when=self.agenda.when(c),
                    status=self.agenda.status_label(c.status),
                )
            )
            if c.status != "erased":
                label = t("clinician.open_button", id=c.id, when_short=self.agenda.when(c, "short"))
                buttons.append((Button(label, f"{AGENDA_PREFIX}{c.id}"),))
        return Reply(clinician.telegram_chat_id or 0, [OutMessage("\n".join(lines), tuple(buttons))])

    async def open(self, clinician: Clinician, consult_id: int) -> Reply:
        consult = await self.repo.get_consult(consult_id)
        if consult is None or consult.practice_id != clinician.practice_id:
            return self._note(clinician, "clinician.not_found")
        if consult.status == "erased":
            return self._note(clinician, "clinician.erased", id=consult.id)
        log.info("clinician %s opened agenda of consult %s", clinician.id, consult.id)
        return Reply(clinician.telegram_chat_id or 0, await self.agenda.telegram_messages(consult.id))

    async def render_outbox_agenda(self, item: OutboxItem) -> list[OutMessage] | None:
        """Outbox renderer for ``agenda`` rows: rendered at send time, so erased data never goes."""
        consult = await self.repo.get_consult(int(item.payload["consult_id"]))
        if consult is None or consult.status != "ready":
            return None
        header = self.catalog.t("clinician.new_agenda", id=consult.id)
        return await self.agenda.telegram_messages(consult.id, header=header)
