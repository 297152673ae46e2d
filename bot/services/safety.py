"""The crisis safety net in anything a patient writes, in two tiers.

- **route**: a clear emergency. The patient gets the route at once (112, huisartsenpost, 113,
  Veilig Thuis) and the practice an immediate notice.
- **check**: risk words without a clear statement. The patient gets one direct yes/no question at
  once (asking directly is what 113 advises). Yes: the route and the notice. No: thanks, and the
  agenda shows the question and the answer. No answer within ``check_minutes``: the notice anyway.

The bot never gives medical advice; it routes. The POH's notice names the kind and the route given,
never the patient's words.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.callbacks import CheckTap
from bot.clock import Clock
from bot.content import Catalog
from bot.flows.model import Button, OutMessage
from bot.nlp.analyzer import Analyzer
from bot.nlp.safety import SafetyResult, typed_answer
from bot.services.notices import PracticeNotices
from bot.storage.models import ConsultStatus, OutboxItem, OutboxKind, Patient, SafetyCheck
from bot.storage.ports import UnitOfWork

log = logging.getLogger(__name__)


class SafetyService:
    def __init__(
        self,
        repo: UnitOfWork,
        analyzer: Callable[[], Analyzer],
        catalog: Catalog,
        clock: Clock,
        when: Callable[..., str],
        *,
        notices: PracticeNotices,
        check_minutes: float = 5,
    ) -> None:
        self.repo = repo
        self.notices = notices
        self._analyzer = analyzer
        self.catalog = catalog
        self.clock = clock
        self._when = when
        self.check_after = timedelta(minutes=check_minutes)

    def assess(self, text: str | None) -> SafetyResult:
        return self._analyzer().assess(text) if text else SafetyResult()

    def routes(self, flags: list[str] | tuple[str, ...]) -> list[str]:
        analyzer = self._analyzer()
        return list(dict.fromkeys(analyzer.route(f) for f in flags))

    def notes(self, flags: list[str] | tuple[str, ...], *, practice_told: bool) -> list[str]:
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
                await self.repo.safety.add_event(patient.id, consult_id, flag, analyzer.route(flag), now)
            told = await self._notify(consult_id, {"flags": flags}, due=now)
        log.warning(
            "red flag(s) %s for consult %s; %d clinician(s) notified", ",".join(flags), consult_id, told
        )
        return bool(told)

    async def route_notes(
        self, patient: Patient, consult_id: int | None, flags: list[str]
    ) -> list[OutMessage]:
        """Record a route and say it: where to get help now, and that the practice is told."""
        told = await self.record(patient, consult_id, flags)
        return [OutMessage(n) for n in self.notes(flags, practice_told=told)]

    # -- the check tier --------------------------------------------------------------------------
    async def ask(
        self, patient: Patient, consult_id: int | None, kinds: list[str], held_seq: int | None = None
    ) -> OutMessage:
        """Store a check and queue the practice's notice for when it stays unanswered."""
        now = self.clock.now()
        async with self.repo.transaction():
            check_id = await self.repo.safety.add_check(patient.id, consult_id, kinds, held_seq, now)
            await self._notify(consult_id, {"flags": kinds, "check_id": check_id}, due=now + self.check_after)
        log.info("safety check %s asked (%s) for consult %s", check_id, ",".join(kinds), consult_id)
        return self.question(kinds, check_id)

    async def typed_answer(self, patient: Patient, text: str) -> CheckTap | None:
        """ "ja" or "nee" typed while a check question is open (asked in the last hour)."""
        answer = typed_answer(self._analyzer().lexicon.safety, text)
        if answer is None:
            return None
        check = await self.repo.safety.open_check(patient.id, self.clock.now() - timedelta(hours=1))
        return CheckTap(check_id=check.id, yes=answer) if check is not None else None

    def question(
        self, kinds: list[str] | tuple[str, ...], check_id: int, kind: str | None = None
    ) -> OutMessage:
        """One direct yes/no question, about the first kind (the lexicon's order: most serious first)."""
        t = self.catalog.t
        buttons = tuple(
            (Button(t(key), CheckTap(check_id=check_id, kind=kind, yes=yes).pack()),)
            for key, yes in (("buttons.check_yes", True), ("buttons.check_no", False))
        )
        return OutMessage(t(f"safety.checks.{kinds[0]}"), buttons=buttons)

    def stranger_question(self, kinds: list[str]) -> OutMessage:
        """Someone without an invite: nothing is stored, the tap itself says what was asked."""
        return self.question(kinds, 0, kinds[0])

    async def answer(
        self, patient: Patient, tap: CheckTap
    ) -> tuple[SafetyCheck | None, list[OutMessage]] | None:
        """Record the answer (once). Yes: the route and the notice. None: an old or foreign tap."""
        if tap.kind is not None:
            return None, self.stranger_answer(tap)
        check = await self.repo.safety.check(tap.check_id)
        if check is None or check.patient_id != patient.id:
            return None
        # One transaction: a "yes" is stored together with its route and the practice's notice,
        # or not at all (then the notice for an unanswered check still goes).
        async with self.repo.transaction():
            if not await self.repo.safety.answer_check(
                check.id, "yes" if tap.yes else "no", self.clock.now()
            ):
                return None
            notes = (
                await self.route_notes(patient, check.consult_id, list(check.flags))
                if tap.yes
                else [OutMessage(self.catalog.t("safety.check_thanks"))]
            )
        log.info("safety check %s answered %s", check.id, "yes" if tap.yes else "no")
        return check, notes

    def stranger_answer(self, tap: CheckTap) -> list[OutMessage]:
        analyzer = self._analyzer()
        if not tap.yes or tap.kind not in analyzer.lexicon.safety.routes:
            return [OutMessage(self.catalog.t("safety.check_thanks"))]
        return [OutMessage(n) for n in self.notes([tap.kind], practice_told=False)]

    # -- the practice's notice --------------------------------------------------------------------
    async def _notify(self, consult_id: int | None, payload: dict[str, object], *, due: datetime) -> int:
        """The practice's notice (for the consult's POH): ids and kinds only, never the words."""
        if consult_id is None:
            return 0
        consult = await self.repo.consults.get(consult_id)
        if consult is None:
            return 0
        return await self.notices.tell(
            OutboxKind.ALERT,
            consult.practice_id,
            {"consult_id": consult_id, **payload},
            self.clock.now(),
            clinician_id=consult.clinician_id,
            due=due,
            consult_id=consult_id,
        )

    async def render_alert(self, item: OutboxItem) -> list[OutMessage] | None:
        consult = await self.repo.consults.get(int(item.payload["consult_id"]))
        if consult is None or consult.status == ConsultStatus.ERASED:
            return None
        flags = list(item.payload["flags"])
        key = "clinician.alert"
        if "check_id" in item.payload:
            check = await self.repo.safety.check(int(item.payload["check_id"]))
            if check is None or check.answer is not None:
                return None  # answered: "yes" sent its own notice, "no" goes to the agenda
            key = "clinician.check_alert"
        text = self.catalog.t(
            key,
            id=consult.id,
            when=self._when(consult),
            flags=", ".join(self.catalog.t(f"safety.flags.{f}") for f in flags),
            routes=", ".join(self.catalog.t(f"safety.route_names.{r}") for r in self.routes(flags)),
            minutes=round(self.check_after.total_seconds() / 60),
        )
        return [OutMessage(text)]
