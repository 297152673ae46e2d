"""Red flags in anything a patient writes: answer at once with the route, tell the practice.

The bot never gives medical advice; it routes (112, huisartsenpost, 113, Veilig Thuis).
The POH's notice names the kind of flag and the route given, never the patient's words.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.clock import Clock
from bot.content import Catalog
from bot.flows.model import OutMessage
from bot.nlp.analyzer import Analyzer
from bot.storage.repo import OutboxItem, Patient, Repository

log = logging.getLogger(__name__)


class SafetyService:
    def __init__(
        self,
        repo: Repository,
        analyzer: Callable[[], Analyzer],
        catalog: Catalog,
        clock: Clock,
        when: Callable[..., str],
    ) -> None:
        self.repo = repo
        self._analyzer = analyzer
        self.catalog = catalog
        self.clock = clock
        self._when = when

    def detect(self, text: str) -> list[str]:
        return self._analyzer().red_flags(text)

    def routes(self, flags: list[str]) -> list[str]:
        analyzer = self._analyzer()
        return list(dict.fromkeys(analyzer.route(f) for f in flags))

    def notes(self, flags: list[str], *, practice_told: bool) -> list[str]:
        texts = [self.catalog.t(f"safety.routes.{route}") for route in self.routes(flags)]
        if practice_told:
            texts.append(self.catalog.t("safety.told_practice"))
        return texts

    async def record(self, patient: Patient, consult_id: int | None, flags: list[str]) -> bool:
        """Store the flags and queue an immediate notice for the practice; True if anyone is told."""
        now = self.clock.now()
        analyzer = self._analyzer()
        async with self.repo.transaction():
            for flag in flags:
                await self.repo.add_safety_event(patient.id, consult_id, flag, analyzer.route(flag), now)
            recipients = []
            if consult_id is not None:
                consult = await self.repo.get_consult(consult_id)
                if consult is not None:
                    recipients = await self.repo.agenda_recipients(consult.practice_id, consult.clinician_id)
            for clinician in recipients:
                await self.repo.enqueue(
                    "alert",
                    clinician.telegram_chat_id or 0,
                    {"consult_id": consult_id, "flags": flags},
                    now,
                    now,
                    patient_id=patient.id,
                    consult_id=consult_id,
                )
        log.warning(
            "red flag(s) %s for consult %s; %d clinician(s) notified",
            ",".join(flags),
            consult_id,
            len(recipients),
        )
        return bool(recipients)

    async def render_alert(self, item: OutboxItem) -> list[OutMessage] | None:
        consult = await self.repo.get_consult(int(item.payload["consult_id"]))
        if consult is None or consult.status == "erased":
            return None
        flags = list(item.payload["flags"])
        text = self.catalog.t(
            "clinician.alert",
            id=consult.id,
            when=self._when(consult),
            flags=", ".join(self.catalog.t(f"safety.flags.{f}") for f in flags),
            routes=", ".join(self.catalog.t(f"safety.route_names.{r}") for r in self.routes(flags)),
        )
        return [OutMessage(text)]
