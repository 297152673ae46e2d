"""The POH's side in Telegram: the consult list and agendas."""

from __future__ import annotations

import logging
from datetime import datetime, time

from bot.callbacks import AgendaTap
from bot.channels import Reply
from bot.clock import Clock
from bot.content import Catalog
from bot.flows.model import Button, OutMessage
from bot.numbers import row_id
from bot.services.agenda import AgendaService
from bot.services.plans import PlanError, PlanService, describe_schedule
from bot.services.schedule_input import ScheduleError, read_schedule, word_kinds
from bot.storage.models import Clinician, Consult, ConsultStatus, OutboxItem, Patient
from bot.storage.ports import UnitOfWork

log = logging.getLogger(__name__)


class ClinicianService:
    def __init__(
        self,
        repo: UnitOfWork,
        agenda: AgendaService,
        catalog: Catalog,
        clock: Clock,
        plans: PlanService,
    ) -> None:
        self.repo = repo
        self.agenda = agenda
        self.catalog = catalog
        self.clock = clock
        self.plans = plans

    def _note(self, clinician: Clinician, key: str, **params: object) -> Reply:
        return Reply(clinician.telegram_chat_id or 0, [OutMessage(self.catalog.t(key, **params))])

    async def welcome(self, clinician: Clinician) -> Reply:
        practice = await self.repo.practices.get(clinician.practice_id)
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
        consults = await self.repo.consults.upcoming(clinician.practice_id, local_today)
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
            if c.status != ConsultStatus.ERASED:
                label = t("clinician.open_button", id=c.id, when_short=self.agenda.when(c, "short"))
                buttons.append((Button(label, AgendaTap(consult=c.id).pack()),))
        return Reply(clinician.telegram_chat_id or 0, [OutMessage("\n".join(lines), tuple(buttons))])

    async def open(self, clinician: Clinician, consult_id: int) -> Reply:
        consult = await self.repo.consults.get(consult_id)
        if consult is None or consult.practice_id != clinician.practice_id:
            return self._note(clinician, "clinician.not_found")
        if consult.status == ConsultStatus.ERASED:
            return self._note(clinician, "clinician.erased", id=consult.id)
        log.info("clinician %s opened agenda of consult %s", clinician.id, consult.id)
        return Reply(clinician.telegram_chat_id or 0, await self.agenda.telegram_messages(consult.id))

    async def render_outbox_agenda(self, item: OutboxItem) -> list[OutMessage] | None:
        """Outbox renderer for ``agenda`` rows: rendered at send time, so erased data never goes."""
        consult = await self.repo.consults.get(int(item.payload["consult_id"]))
        if consult is None or consult.status != ConsultStatus.READY:
            return None
        header = self.catalog.t("clinician.new_agenda", id=consult.id)
        return await self.agenda.telegram_messages(consult.id, header=header)

    async def listen(self, clinician: Clinician, word: str) -> Reply:
        """``/luister 5``: a patient's voice answer, for a POH of the same practice."""
        note_id = row_id(word)
        note = await self.repo.voice_notes.get(note_id) if note_id is not None else None
        patient = await self.repo.patients.get(note["patient_id"]) if note is not None else None
        if note is None or patient is None or patient.practice_id != clinician.practice_id:
            return self._note(clinician, "clinician.voice_not_found")
        log.info("clinician %s listened to voice answer %s", clinician.id, note["id"])
        return Reply(clinician.telegram_chat_id or 0, [OutMessage("", voice=bytes(note["audio"]))])

    # -- the plan, from the POH's chat ------------------------------------------------------
    async def _patient_of(self, clinician: Clinician, word: str) -> tuple[Consult, Patient] | None:
        """The patient of consult ``#<id>`` in the clinician's own practice."""
        consult_id = row_id(word)
        consult = await self.repo.consults.get(consult_id) if consult_id is not None else None
        if (
            consult is None
            or consult.practice_id != clinician.practice_id
            or consult.status == ConsultStatus.ERASED
        ):
            return None
        patient = await self.repo.patients.get(consult.patient_id)
        return (consult, patient) if patient is not None else None

    async def plan_command(self, clinician: Clinician, name: str, args: str) -> Reply:
        """/plan 12, /planmaken 12, /doel 12 <text>, /actie <goal> <time> <days> <text>, /stopactie <id>."""
        words = args.split()
        try:
            if name == "end_action":
                await self._end_action(clinician, words[0] if words else "")
                return self._note(clinician, "clinician.plan.action_ended")
            if name == "action":
                return await self._add_action(clinician, args)
            found = await self._patient_of(clinician, words[0]) if words else None
            if found is None:
                return self._note(clinician, f"clinician.plan.usage_{name}")
            consult, patient = found
            if name == "goal":
                text = args.split(None, 1)[1] if len(words) > 1 else ""
                goal = await self.plans.add_goal(patient.id, text, f"clinician:{clinician.id}")
                log.info("clinician %s added goal %s", clinician.id, goal)
                return self._note(clinician, "clinician.plan.goal_added", goal=goal, consult=consult.id)
            if name == "invite_plan":
                return await self._invite_plan(clinician, consult, patient)
            return await self._show_plan(clinician, consult, patient)
        except ScheduleError as exc:  # the time or the days: say which, then how the command goes
            texts = [self.catalog.t(exc.key), self.catalog.t(f"clinician.plan.usage_{name}")]
            return Reply(clinician.telegram_chat_id or 0, [OutMessage("\n".join(texts))])
        except (PlanError, ValueError, LookupError):  # LookupError: a missing word or unknown +meting
            return self._note(clinician, f"clinician.plan.usage_{name}")

    async def _show_plan(self, clinician: Clinician, consult: Consult, patient: Patient) -> Reply:
        goals = await self.plans.goals(patient.id)
        log.info("clinician %s viewed the plan of consult %s", clinician.id, consult.id)
        text = self.catalog.render_template(
            "plan_poh.txt.j2",
            consult=consult.id,
            goals=goals,
            when=lambda action: describe_schedule(self.catalog, action.schedule),
        )
        return Reply(clinician.telegram_chat_id or 0, [OutMessage(text)])

    async def _invite_plan(self, clinician: Clinician, consult: Consult, patient: Patient) -> Reply:
        if not patient.reachable:
            return self._note(clinician, "clinician.plan.unreachable", consult=consult.id)
        now = self.clock.now()
        await self.repo.outbox.enqueue_plan_start(patient, consult.id, now, now)
        return self._note(clinician, "clinician.plan.invited", consult=consult.id)

    async def _add_action(self, clinician: Clinician, args: str) -> Reply:
        goal_word, at, days, *rest = args.split()
        goal_id = row_id(goal_word)
        goal = await self.plans.goal_in_practice(goal_id, clinician.practice_id) if goal_id else None
        if goal is None:
            raise PlanError("no such goal")
        measurement = None
        if rest and rest[0].startswith("+"):
            # "+bloeddruk": the measurement by its Dutch name, as the patient sees it.
            names = {str(v): k for k, v in self.catalog.raw("measure.names").items()}
            measurement = names[rest.pop(0)[1:].casefold()]
        what = " ".join(rest)
        now = self.clock.now().astimezone(self.agenda.zone)
        schedule = read_schedule(
            days,
            at,
            today=now.date(),
            now=now.time(),
            weekday_names=self.catalog.raw("weekdays"),
            words=word_kinds(self.catalog.raw("schedule_words")),
        )
        action = await self.plans.add_action(goal, what, schedule, f"clinician:{clinician.id}", measurement)
        log.info("clinician %s added action %s", clinician.id, action)
        return self._note(
            clinician,
            "clinician.plan.action_added",
            action=action,
            when=describe_schedule(self.catalog, schedule),
        )

    async def _end_action(self, clinician: Clinician, word: str) -> None:
        action = row_id(word)
        if action is None or not await self.plans.action_in_practice(action, clinician.practice_id):
            raise PlanError("no such action")
        await self.plans.end_action(action)
        log.info("clinician %s ended action %s", clinician.id, action)
