"""``/start``: who is this Telegram user, and what does an invite link make of them?"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.callbacks import CheckTap
from bot.channels import Reply
from bot.clock import Clock
from bot.content import Catalog
from bot.flows.model import OutMessage
from bot.services.clinicians import ClinicianService
from bot.services.invites import InviteService
from bot.services.patients import PatientService
from bot.services.safety import SafetyService
from bot.storage.models import Clinician, Invite, Patient, PatientStatus
from bot.storage.ports import UnitOfWork

log = logging.getLogger(__name__)

STRANGER_QUIET = timedelta(minutes=10)  # someone we do not know: at most one reply per chat per period


class Onboarding:
    def __init__(
        self,
        repo: UnitOfWork,
        invites: InviteService,
        patients: PatientService,
        clinicians: ClinicianService,
        catalog: Catalog,
        clock: Clock,
        safety: SafetyService,
    ) -> None:
        self.safety = safety
        self.repo = repo
        self.invites = invites
        self.patients = patients
        self.clinicians = clinicians
        self.catalog = catalog
        self.clock = clock
        self._stranger_replied: dict[int, datetime] = {}

    def _note(self, chat_id: int, key: str) -> Reply:
        return Reply(chat_id, [OutMessage(self.catalog.t(key))])

    def stranger(self, chat_id: int, text: str | None) -> Reply:
        """Someone we do not know. Danger words still get the route at once (no data is kept);
        anything else gets the invitation note at most once per ``STRANGER_QUIET`` (a flood of
        messages from one stranger costs one reply, then silence)."""
        danger = self.safety.assess(text)
        notes = [OutMessage(n) for n in self.safety.notes(danger.route, practice_told=False)]
        if not danger.route and danger.check:
            notes.append(self.safety.stranger_question(danger.check))
        if not notes and not self.stranger_may_hear(chat_id):
            return Reply(chat_id, [])
        return Reply(chat_id, [*notes, OutMessage(self.catalog.t("unknown_user"))])

    def stranger_may_hear(self, chat_id: int) -> bool:
        """True once per ``STRANGER_QUIET`` per chat (kept in memory, no data about the stranger)."""
        now = self.clock.now()
        if len(self._stranger_replied) > 10_000:  # forget the old ones; memory stays small
            self._stranger_replied = {
                c: t for c, t in self._stranger_replied.items() if now - t < STRANGER_QUIET
            }
        last = self._stranger_replied.get(chat_id)
        if last is not None and now - last < STRANGER_QUIET:
            return False
        self._stranger_replied[chat_id] = now
        return True

    def stranger_check(self, chat_id: int, tap: CheckTap | None) -> Reply:
        """Someone unknown answers a check question: the route on yes, thanks on no."""
        if tap is None or tap.kind is None:
            return self._note(chat_id, "unknown_user")
        return Reply(chat_id, self.safety.stranger_answer(tap))

    async def identify(self, user_id: int) -> Clinician | Patient | None:
        clinician = await self.repo.clinicians.by_telegram(user_id)
        if clinician is not None:
            return clinician
        patient = await self.repo.patients.by_telegram(user_id)
        if patient is not None and patient.blocked:
            # They write again, so they unblocked the bot: reminders may go again.
            await self.repo.patients.set_blocked(patient.id, None)
            log.info("patient %s can be reached again", patient.id)
            patient = await self.repo.patients.get(patient.id)
        return patient

    async def start(self, user_id: int, chat_id: int, token: str | None, update_id: int | None) -> Reply:
        actor = await self.identify(user_id)
        if token:
            invite = await self.invites.valid_invite(token)
            if invite is not None:
                return await self._redeem(invite, actor, user_id, chat_id, update_id)
            log.info("start with an invalid or used invite")
            if actor is None:
                return self._note(chat_id, "invalid_token")
            reply = await self._resume(actor, update_id)
            reply.messages.insert(0, OutMessage(self.catalog.t("invalid_token")))
            return reply
        if actor is None:
            return self._note(chat_id, "unknown_user")
        return await self._resume(actor, update_id)

    async def _resume(self, actor: Clinician | Patient, update_id: int | None) -> Reply:
        if isinstance(actor, Clinician):
            return self.clinicians.help(actor)
        return await self.patients.command(actor, "start", update_id)

    async def _redeem(
        self,
        invite: Invite,
        actor: Clinician | Patient | None,
        user_id: int,
        chat_id: int,
        update_id: int | None,
    ) -> Reply:
        now = self.clock.now()
        if invite.kind == "clinician":
            if actor is not None:
                return self._note(chat_id, "already_linked")
            async with self.repo.transaction():
                if not await self.repo.invites.use(invite.id, now):
                    return self._note(chat_id, "invalid_token")
                await self.repo.clinicians.link(invite.clinician_id or 0, user_id, chat_id)
            clinician = await self.repo.clinicians.get(invite.clinician_id or 0)
            assert clinician is not None
            log.info("clinician %s linked", clinician.id)
            return await self.clinicians.welcome(clinician)
        # A patient invite: a new patient, or the next consult of this same patient.
        if isinstance(actor, Clinician) or (actor is not None and actor.id != invite.patient_id):
            return self._note(chat_id, "already_linked")
        target = await self.repo.patients.get(invite.patient_id or 0)
        if (
            target is None
            or target.status == PatientStatus.ERASED
            or (target.telegram_user_id is not None and target.telegram_user_id != user_id)
        ):
            return self._note(chat_id, "already_linked")
        consult = await self.repo.consults.get(invite.consult_id or 0)
        if consult is None:
            return self._note(chat_id, "invalid_token")
        # Lock order everywhere: the patient first, then the database transaction.
        async with self.patients.locks(target.id), self.repo.transaction():
            if not await self.repo.invites.use(invite.id, now):
                return self._note(chat_id, "invalid_token")
            await self.repo.patients.link(target.id, user_id, chat_id)
            patient = await self.repo.patients.get(target.id)
            assert patient is not None
            reply = await self.patients.begin(patient, consult, update_id)
        log.info("patient %s linked for consult %s", patient.id, consult.id)
        return reply
