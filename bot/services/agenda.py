"""The agenda the POH reads before the consult, built from the answers and their analysis.

Order: red flags, a short summary (at most ``SUMMARY_LINES``), then the detail: priorities
in the patient's words, per dimension the score, wants-to-talk, themes and topics with the
patient's own sentence, what they want to discuss and what matters to them. When the patient
has an earlier completed intake, what changed is shown too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.content import Catalog
from bot.flows.engine import FORWARDED
from bot.flows.model import OutMessage
from bot.nlp.analyzer import Analyzer
from bot.nlp.items import split_items
from bot.render import split_message
from bot.services.measurements import show
from bot.storage.models import Consult, ReminderStatus, SafetyCheck
from bot.storage.ports import UnitOfWork

SUMMARY_LINES = 8
REVIEW_ANSWERS = ("good", "so_so", "bad")
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
    own_words_forwarded: bool = False  # a forwarded message: maybe not the patient's own words
    topics: list[TopicView] = field(default_factory=list)


@dataclass
class FlagView:
    label: str
    route: str


@dataclass
class CheckView:
    """Risk words that got one direct question, and the patient's answer."""

    label: str
    answer: str


@dataclass
class ActionProgress:
    what: str
    done: int = 0
    not_done: int = 0
    later: int = 0
    missed: int = 0
    streak: int = 0  # not done or missed in a row, up to the latest answer
    barriers: list[str] = field(default_factory=list)  # "Vergeten (2x)"
    trend: str | None = None  # "135/85 → 150/95 (4 metingen)"
    measurement: str | None = None
    values: list[list[float]] = field(default_factory=list)  # the measured values, oldest first

    @property
    def total(self) -> int:
        return self.done + self.not_done + self.missed


@dataclass
class GoalProgress:
    text: str
    actions: list[ActionProgress] = field(default_factory=list)
    week: list[str] = field(default_factory=list)  # answers to the weekly look back, oldest first


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
    checks: list[CheckView] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    previous_when: str | None = None
    progress: list[GoalProgress] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)  # answer keys that came forwarded

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
        repo: UnitOfWork,
        catalog: Catalog,
        zone: ZoneInfo,
        low_score_threshold: int,
        analyzer: Callable[[], Analyzer],
        *,
        web_base_url: str | None = None,  # where the web app runs: agendas link to it
    ) -> None:
        self.web_base_url = web_base_url
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
        checks: list[SafetyCheck] | None = None,
    ) -> AgendaView:
        analyzer = self.analyzer()
        dims = {d.id: self._dimension(d.id, answers) for d in self.catalog.dimensions}
        texts = [answers[k] for k in FREE_TEXT_KEYS if answers.get(k)]
        texts += [answers[f"{d}.hard_text"] for d in dims if answers.get(f"{d}.hard_text")]
        found_flags = list(flags or [])
        asked = [(c.flags, c.answer or "none") for c in checks or []]
        for text in texts:
            analysis = analyzer.analyze(text)
            found_flags += analysis.red_flags
            unasked = [k for k in analysis.checks if not any(k in kinds for kinds, _ in asked)]
            if unasked:
                asked.append((tuple(unasked), "none"))
            for topic in analysis.topics:
                if not topic.present or topic.domain not in dims:
                    continue
                dim_view = dims[topic.domain]
                if topic.theme:
                    label = self.catalog.theme(topic.theme).label
                    if label not in dim_view.themes:
                        dim_view.themes.append(label)
                quote = _quote(topic.sentence)
                if all(quote != t.quote for t in dim_view.topics) and quote != dim_view.own_words:
                    dim_view.topics.append(TopicView(topic.text, quote))
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
            forwarded=list(answers.get(FORWARDED) or []),
            red_flags=[
                FlagView(
                    self.catalog.t(f"safety.flags.{f}"),
                    self.catalog.t(f"safety.route_names.{analyzer.route(f)}"),
                )
                for f in dict.fromkeys(found_flags)
            ],
            checks=[
                CheckView(
                    ", ".join(self.catalog.t(f"safety.flags.{f}") for f in kinds),
                    self.catalog.t(f"safety.check_answers.{answer}"),
                )
                for kinds, answer in asked
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
            own_words_forwarded=f"{dim.id}.hard_text" in (answers.get(FORWARDED) or []),
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
        consult = await self.repo.consults.get(consult_id)
        if consult is None:
            return None
        name = None
        if include_name:
            patient = await self.repo.patients.get(consult.patient_id)
            name = patient.display_name if patient else None
        previous = None
        earlier = await self.repo.consults.previous(consult)
        if earlier is not None:
            previous = (earlier, await self.repo.answers.of_consult(earlier.id))
        view = self.build(
            consult,
            await self.repo.answers.of_consult(consult_id),
            name,
            await self.repo.safety.flags(consult_id),
            previous,
            await self.repo.safety.checks(consult_id),
        )
        since = earlier.scheduled_at if earlier is not None else consult.scheduled_at - timedelta(days=366)
        view.progress = await self.progress(consult.patient_id, since, consult.scheduled_at)
        return view

    async def progress(self, patient_id: int, since: datetime, until: datetime) -> list[GoalProgress]:
        """How the plan went between two consults: per goal and action, from the reminders."""
        goals: dict[int, GoalProgress] = {}
        actions: dict[tuple[int, str], ActionProgress] = {}
        barriers: dict[tuple[int, str], Counter[str]] = {}
        t = self.catalog.t
        for r in await self.repo.reminders.of_patient(patient_id, since, until):
            goal = goals.setdefault(r.goal_id, GoalProgress(r.goal_text))
            if r.kind == "review":
                if r.value in REVIEW_ANSWERS:
                    goal.week.append(t(f"reminder.review_answers.{r.value}"))
                continue
            key = (r.goal_id, r.what)
            action = actions.get(key)
            if action is None:
                action = actions[key] = ActionProgress(r.what)
                goal.actions.append(action)
            if r.status in (ReminderStatus.DONE, ReminderStatus.NOT_DONE, ReminderStatus.MISSED):
                setattr(action, r.status, getattr(action, r.status) + 1)
                action.streak = action.streak + 1 if r.status != ReminderStatus.DONE else 0
            action.later += r.later_count
            if r.barrier:
                barriers.setdefault(key, Counter())[t(f"reminder.barriers.{r.barrier}")] += 1
            if r.measurement and isinstance(r.value, list):
                action.measurement = r.measurement
                action.values.append(r.value)
        for key, action in actions.items():
            action.barriers = [f"{label} ({n}x)" for label, n in barriers.get(key, Counter()).most_common()]
            if action.measurement and action.values:
                kind, series = action.measurement, action.values
                first, last = show(kind, series[0]), show(kind, series[-1])
                action.trend = t(
                    "agenda.trend", name=t(f"measure.names.{kind}"), first=first, last=last, n=len(series)
                )
        return list(goals.values())

    def render(self, view: AgendaView, link: str | None = None) -> str:
        return self.catalog.render_template("agenda.txt.j2", a=view, summary_max=SUMMARY_LINES, link=link)

    async def text(
        self, consult_id: int, *, include_name: bool = False, link: str | None = None
    ) -> str | None:
        view = await self.view(consult_id, include_name=include_name)
        return self.render(view, link) if view else None

    async def telegram_messages(self, consult_id: int, header: str | None = None) -> list[OutMessage]:
        """The agenda as Telegram messages (no patient name), split under the size limit. With the
        web app configured, the summary and a link to the full page instead of all detail."""
        link = f"{self.web_base_url.rstrip('/')}/consult/{consult_id}" if self.web_base_url else None
        text = await self.text(consult_id, include_name=False, link=link)
        if text is None:
            return []
        if header:
            text = f"{header}\n\n{text}"
        return [OutMessage(part) for part in split_message(text)]
