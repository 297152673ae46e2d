"""The agenda the POH reads before the consult, built from the answers and their analysis.

Order: red flags, a short summary (at most ``SUMMARY_LINES``), then the detail: priorities
in the patient's words, per dimension the score, wants-to-talk, themes and topics with the
patient's own sentence, what they want to discuss and what matters to them. When the patient
has an earlier completed intake, what changed is shown too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from bot.content import Catalog
from bot.flows.model import OutMessage
from bot.nlp.analyzer import Analyzer
from bot.nlp.items import split_items
from bot.render import split_message
from bot.storage.repo import Consult, Repository

SUMMARY_LINES = 8
QUOTE_MAX = 200
FREE_TEXT_KEYS = ("what_matters", "discuss")


@dataclass
class TopicView:
    text: str
    quote: str


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
    topics: list[TopicView] = field(default_factory=list)


@dataclass
class FlagView:
    label: str
    route: str


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
    red_flags: list[FlagView] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    previous_when: str | None = None

    @property
    def low(self) -> list[DimensionView]:
        return [d for d in self.dimensions if d.low]

    @property
    def wants_to_talk(self) -> list[DimensionView]:
        return [d for d in self.dimensions if d.talk]

    @property
    def all_themes(self) -> list[str]:
        return list(dict.fromkeys(t for d in self.dimensions for t in d.themes))


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_MAX else text[: QUOTE_MAX - 1] + "…"


class AgendaService:
    def __init__(
        self,
        repo: Repository,
        catalog: Catalog,
        zone: ZoneInfo,
        low_score_threshold: int,
        analyzer: Callable[[], Analyzer],
    ) -> None:
        self.repo = repo
        self.catalog = catalog
        self.zone = zone
        self.low_score_threshold = low_score_threshold
        self.analyzer = analyzer

    def when(self, consult: Consult, style: str = "long") -> str:
        return self.catalog.format_when(consult.scheduled_at.astimezone(self.zone), style)

    def status_label(self, status: str) -> str:
        return self.catalog.t(f"clinician.status.{status}")

    def build(
        self,
        consult: Consult,
        answers: dict[str, Any],
        patient_name: str | None,
        flags: list[str] | None = None,
        previous: tuple[Consult, dict[str, Any]] | None = None,
    ) -> AgendaView:
        analyzer = self.analyzer()
        dims = {d.id: self._dimension(d.id, answers) for d in self.catalog.dimensions}
        texts = [answers[k] for k in FREE_TEXT_KEYS if answers.get(k)]
        texts += [answers[f"{d}.hard_text"] for d in dims if answers.get(f"{d}.hard_text")]
        found_flags = list(flags or [])
        for text in texts:
            analysis = analyzer.analyze(text)
            found_flags += analysis.red_flags
            for topic in analysis.topics:
                if not topic.present or topic.domain not in dims:
                    continue
                view = dims[topic.domain]
                if topic.theme:
                    label = self.catalog.theme(topic.theme).label
                    if label not in view.themes:
                        view.themes.append(label)
                quote = _quote(topic.sentence)
                if all(quote != t.quote for t in view.topics) and quote != view.own_words:
                    view.topics.append(TopicView(topic.text, quote))
        view = AgendaView(
            consult_id=consult.id,
            when=self.when(consult),
            status_key=consult.status,
            status=self.status_label(consult.status),
            patient_name=patient_name,
            priorities=[p["label"] for p in answers.get("priorities") or []],
            dimensions=list(dims.values()),
            discuss=split_items(answers.get("discuss") or ""),
            what_matters=answers.get("what_matters"),
            red_flags=[
                FlagView(
                    self.catalog.t(f"safety.flags.{f}"),
                    self.catalog.t(f"safety.route_names.{analyzer.route(f)}"),
                )
                for f in dict.fromkeys(found_flags)
            ],
        )
        if previous is not None:
            view.previous_when = self.when(previous[0])
            view.changes = self._changes(view, self.build(previous[0], previous[1], None))
        return view

    def _dimension(self, dim_id: str, answers: dict[str, Any]) -> DimensionView:
        dim = self.catalog.dimension(dim_id)
        score = answers.get(f"{dim.id}.score")
        return DimensionView(
            id=dim.id,
            name=dim.name,
            emoji=dim.emoji,
            score=score,
            talk=answers.get(f"{dim.id}.talk") is True,
            low=isinstance(score, int) and score <= self.low_score_threshold,
            themes=[self.catalog.theme(t).label for t in answers.get(f"{dim.id}.hard") or []],
            own_words=answers.get(f"{dim.id}.hard_text"),
        )

    def _changes(self, now: AgendaView, before: AgendaView) -> list[str]:
        out = []
        for cur, old in zip(now.dimensions, before.dimensions, strict=True):
            if isinstance(cur.score, int) and isinstance(old.score, int) and cur.score != old.score:
                out.append(
                    self.catalog.t(
                        "agenda.score_change",
                        name=cur.name,
                        old=old.score,
                        new=cur.score,
                        diff=f"{cur.score - old.score:+d}",
                    )
                )
        new_themes = [t for t in now.all_themes if t not in before.all_themes]
        if new_themes:
            out.append(self.catalog.t("agenda.new_themes", themes=", ".join(new_themes)))
        return out

    async def view(self, consult_id: int, *, include_name: bool = False) -> AgendaView | None:
        consult = await self.repo.get_consult(consult_id)
        if consult is None:
            return None
        name = None
        if include_name:
            patient = await self.repo.get_patient(consult.patient_id)
            name = patient.display_name if patient else None
        previous = None
        earlier = await self.repo.previous_consult(consult)
        if earlier is not None:
            previous = (earlier, await self.repo.answers(earlier.id))
        return self.build(
            consult,
            await self.repo.answers(consult_id),
            name,
            await self.repo.safety_flags(consult_id),
            previous,
        )

    def render(self, view: AgendaView) -> str:
        return self.catalog.render_template("agenda.txt.j2", a=view, summary_max=SUMMARY_LINES)

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
