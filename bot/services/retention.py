"""Retention (AVG storage limitation): a patient's data is erased ``RETENTION_MONTHS`` after their
last activity, unless a POH keeps it longer with a reason. 0 (the default) is off: the practice
decides how long it needs the data.

The rule, in one place:

- **Last activity** (:func:`last_activity`) is the latest of: when the patient was added (the
  invite), their latest consult's planned moment, their latest completed intake, the latest goal
  or action added to or ended in their plan, and their latest answer to a reminder.
- While their **plan runs** (a goal not ended, or an action with a reminder still to come) the bot
  still works with the data: they are not due at all.
- The **erase day** (:meth:`RetentionService.standing`) is the latest of: the local date of the
  last activity plus ``RETENTION_MONTHS`` calendar months; the day a POH's hold ends (kept up to
  the day before); and ``NOTICE`` (30 days) after the setting got its present value, so a practice
  that switches retention on, or shortens it, sees everyone on the list before anything goes.
- **Due**: the erase day is today or earlier. **Due soon**: within ``NOTICE``.

The daily run (:meth:`RetentionService.daily`, from ``App.tick``) erases the due patients through
the one erasure there is (``repo.patients.erase``, as ``/wis``), each in its own transaction with
its audit row (user "retention"). A POH's reason stays out of the logs and out of the audit log
(which is never erased); it is erased with the patient. Logs carry internal ids only.
"""

from __future__ import annotations

import calendar
import logging
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.services.locks import KeyedLocks
from bot.storage.models import RetentionFacts, RetentionHold
from bot.storage.ports import UnitOfWork

log = logging.getLogger(__name__)

NOTICE = timedelta(days=30)  # the list shows a patient this long before the erase day
MAX_KEEP_MONTHS = 120  # a hold runs at most ten years; keep again after that
MAX_REASON = 500  # characters of a POH's reason


def add_months(day: date, months: int) -> date:
    """The same day ``months`` calendar months later (31 March + 1 month: 30 April)."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def last_activity(facts: RetentionFacts) -> datetime:
    """The patient's last activity: the definition the whole rule rests on (see the module)."""
    moments = (
        facts.created_at,
        facts.last_consult_at,
        facts.last_completed_at,
        facts.last_plan_change_at,
        facts.last_answer_at,
    )
    return max(m for m in moments if m is not None)


class KeepError(ValueError):
    """A hold that cannot be set; ``key`` names the Dutch message for the POH."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class Actor:
    """Who acts, as the audit log names them. A web user acts within their own practice."""

    name: str
    account_id: int | None = None
    practice_id: int | None = None
    client_address: str | None = None


AUTOMATIC = Actor("retention")


@dataclass(frozen=True)
class Standing:
    """Where one patient stands (see the module for the rule)."""

    facts: RetentionFacts
    last_activity: date  # local date
    erase_on: date
    kept_until: date | None  # a hold still running today
    due: bool

    @property
    def patient_id(self) -> int:
        return self.facts.patient_id

    @property
    def consult_id(self) -> int | None:
        return self.facts.consult_id


@dataclass(frozen=True)
class Overview:
    """The retention page of one practice."""

    months: int  # 0: off
    first_erasure: date  # nobody goes before this day (NOTICE after the setting changed)
    due: list[Standing]
    soon: list[Standing]
    kept: list[RetentionHold]  # holds running past the list's window


class RetentionService:
    def __init__(
        self, repo: UnitOfWork, clock: Clock, zone: ZoneInfo, months: int, *, locks: KeyedLocks
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.zone = zone
        self.months = months
        self.locks = locks

    @property
    def enabled(self) -> bool:
        return self.months > 0

    def today(self) -> date:
        return self.clock.now().astimezone(self.zone).date()

    async def notice_from(self) -> date:
        """Since when the setting has its present value (today when the daily run has not seen it)."""
        state = await self.repo.retention.state()
        if state is not None and state.months == self.months:
            return state.since
        return self.today()

    def standing(self, facts: RetentionFacts, notice_from: date, today: date) -> Standing | None:
        """Where the patient stands; None when retention is off or their plan runs."""
        if not self.enabled or facts.plan_running:
            return None
        last = last_activity(facts).astimezone(self.zone).date()
        kept = facts.kept_until if facts.kept_until is not None and facts.kept_until > today else None
        erase_on = max(add_months(last, self.months), notice_from + NOTICE, kept or date.min)
        return Standing(facts, last, erase_on, kept, erase_on <= today)

    async def standings(
        self, *, practice_id: int | None = None, patient_id: int | None = None
    ) -> list[Standing]:
        """Every patient who is due or due soon, the longest due first."""
        today, notice_from = self.today(), await self.notice_from()
        found = []
        for facts in await self.repo.retention.facts(practice_id=practice_id, patient_id=patient_id):
            standing = self.standing(facts, notice_from, today)
            if standing is not None and standing.erase_on <= today + NOTICE:
                found.append(standing)
        return sorted(found, key=lambda s: (s.erase_on, s.patient_id))

    async def due(self, practice_id: int | None = None) -> list[Standing]:
        return [s for s in await self.standings(practice_id=practice_id) if s.due]

    async def overview(self, practice_id: int) -> Overview:
        listed = await self.standings(practice_id=practice_id) if self.enabled else []
        soon_ids = {s.patient_id for s in listed}
        holds = await self.repo.retention.holds(practice_id, self.today() + timedelta(days=1))
        return Overview(
            months=self.months,
            first_erasure=await self.notice_from() + NOTICE,
            due=[s for s in listed if s.due],
            soon=[s for s in listed if not s.due],
            kept=[h for h in holds if h.patient_id not in soon_ids],
        )

    # -- decisions ---------------------------------------------------------------------------
    def keep_until(self, months: int) -> date:
        """The end of a hold of ``months`` from today; 1 to ``MAX_KEEP_MONTHS``."""
        if not 1 <= months <= MAX_KEEP_MONTHS:
            raise KeepError("web.retention.bad_months")
        return add_months(self.today(), months)

    async def keep(self, patient_id: int, until: date, reason: str, by: Actor) -> bool:
        """Keep the patient's data up to the day before ``until``, with the POH's reason (stored,
        never logged, never audited). False when there is no such patient (not erased) for ``by``."""
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON or any(_control(c) for c in reason):
            raise KeepError("web.retention.bad_reason")
        today = self.today()
        if not today < until <= add_months(today, MAX_KEEP_MONTHS):
            raise KeepError("web.retention.bad_months")
        now = self.clock.now()
        async with self.locks(patient_id), self.repo.transaction():
            facts = await self.repo.retention.facts(patient_id=patient_id)
            if not facts or (by.practice_id is not None and facts[0].practice_id != by.practice_id):
                return False
            await self.repo.retention.add_hold(patient_id, until, reason, by.account_id, by.name, now)
            await self._audit(by, "retention_keep", facts[0], f"kept until {until.isoformat()}")
        log.info("retention: patient %s kept until %s", patient_id, until.isoformat())
        return True

    async def erase(self, patient_id: int, by: Actor, *, only_due: bool) -> bool:
        """Erase the patient now if they are due (``only_due``, the daily run) or on the list (due
        within ``NOTICE``: an admin by hand), read again under the patient's lock. False when not."""
        async with self.locks(patient_id), self.repo.transaction():
            found = await self.standings(practice_id=by.practice_id, patient_id=patient_id)
            if not found or (only_due and not found[0].due):
                return False
            standing = found[0]
            await self.repo.patients.erase(patient_id, self.clock.now())
            how = "automatic" if by is AUTOMATIC else "by hand"
            detail = f"{how}; last activity {standing.last_activity.isoformat()}; months {self.months}"
            await self._audit(by, "retention_erase", standing.facts, detail)
        log.info("retention: patient %s erased (%s)", patient_id, how)
        return True

    async def daily(self) -> int:
        """Once a local day (the first tick of it): erase every due patient; how many were erased.
        The day is claimed first, so two ticks or two processes never run it twice; a patient that
        fails is logged by id and tried again the next day."""
        today = self.today()
        state = await self.repo.retention.state()
        if state is not None and state.last_day >= today:
            return 0
        since = state.since if state is not None and state.months == self.months else today
        if not await self.repo.retention.claim_day(today, self.months, since) or not self.enabled:
            return 0
        erased = 0
        for standing in await self.due():
            try:
                erased += await self.erase(standing.patient_id, AUTOMATIC, only_due=True)
            except Exception as exc:  # one patient must not hold up the others
                name = type(exc).__name__
                log.error("retention: erasing patient %s failed (%s)", standing.patient_id, name)
        log.info("retention: daily run erased %d patient(s)", erased)
        return erased

    async def _audit(self, by: Actor, event: str, facts: RetentionFacts, detail: str) -> None:
        await self.repo.web.audit(
            self.clock.now(),
            event,
            by.name,
            account_id=by.account_id,
            practice_id=facts.practice_id,
            patient_id=facts.patient_id,
            consult_id=facts.consult_id,
            detail=detail,
            client_address=by.client_address,
        )


def _control(char: str) -> bool:
    """A control or format character (newlines included; a reason is one line)."""
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co")
