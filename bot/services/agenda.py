"""The agenda the POH reads before the consult, built from the stored answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from bot.content import Catalog
from bot.flows.model import OutMessage
from bot.nlp.items import split_items
from bot.render import split_message
from bot.storage.repo import Consult, Repository


@dataclass
class DimensionView:
    id: str
    name: str
    emoji: str
    score: int | None
    talk: bool
    low: bool
    themes: list[str] = field(default_factory=list)
    own_words: str | None = None


@dataclass
class AgendaView:
    consult_id: int
    when: str
    status_key: str
    status: str
    patient_name: str | None
    priorities: list[str]
    dimensions: list[DimensionView]
    discuss: list[str]
    what_matters: str | None


class AgendaService:
    def __init__(self, repo: Repository, catalog: Catalog, zone: ZoneInfo, low_score_threshold: int) -> None:
        self.repo = repo
        self.catalog = catalog
        self.zone = zone
        self.low_score_threshold = low_score_threshold

    def when(self, consult: Consult, style: str = "long") -> str:
        return self.catalog.format_when(consult.scheduled_at.astimezone(self.zone), style)

    def status_label(self, status: str) -> str:
        return self.catalog.t(f"clinician.status.{status}")

    def build(self, consult: Consult, answers: dict[str, Any], patient_name: str | None) -> AgendaView:
        dims = []
        for dim in self.catalog.dimensions:
            score = answers.get(f"{dim.id}.score")
            dims.append(
                DimensionView(
                    id=dim.id,
                    name=dim.name,
                    emoji=dim.emoji,
                    score=score,
                    talk=answers.get(f"{dim.id}.talk") is True,
                    low=isinstance(score, int) and score <= self.low_score_threshold,
                    themes=[self.catalog.theme(t).label for t in answers.get(f"{dim.id}.hard") or []],
                    own_words=answers.get(f"{dim.id}.hard_text"),
                )
            )
        return AgendaView(
            consult_id=consult.id,
            when=self.when(consult),
            status_key=consult.status,
            status=self.status_label(consult.status),
            patient_name=patient_name,
            priorities=[p["label"] for p in answers.get("priorities") or []],
            dimensions=dims,
            discuss=split_items(answers.get("discuss") or ""),
            what_matters=answers.get("what_matters"),
        )

    async def view(self, consult_id: int, *, include_name: bool = False) -> AgendaView | None:
        consult = await self.repo.get_consult(consult_id)
        if consult is None:
            return None
        name = None
        if include_name:
            patient = await self.repo.get_patient(consult.patient_id)
            name = patient.display_name if patient else None
        return self.build(consult, await self.repo.answers(consult_id), name)

    def render(self, view: AgendaView) -> str:
        return self.catalog.render_template("agenda.txt.j2", a=view)

    async def text(self, consult_id: int, *, include_name: bool = False) -> str | None:
        view = await self.view(consult_id, include_name=include_name)
        return self.render(view) if view else None

    async def telegram_messages(self, consult_id: int, header: str | None = None) -> list[OutMessage]:
        """The agenda as Telegram messages (no patient name), split under the size limit."""
        text = await self.text(consult_id, include_name=False)
        if text is None:
            return []
        if header:
            text = f"{header}\n\n{text}"
        return [OutMessage(part) for part in split_message(text)]
