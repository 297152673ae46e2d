"""One-time invite links: 192 random bits, single use, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.storage.models import Invite, PatientStatus
from bot.storage.ports import UnitOfWork

TOKEN_BYTES = 24  # 192 bits; token_urlsafe gives 32 characters of [A-Za-z0-9_-]


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def deep_link(bot_username: str, token: str) -> str:
    return f"https://t.me/{bot_username.lstrip('@')}?start={token}"


MAX_NAME = 100  # a patient's name as the practice writes it (only the POH sees it)


class InviteError(ValueError):
    pass


@dataclass(frozen=True)
class PatientInvite:
    token: str
    patient_id: int
    consult_id: int
    expires_at: datetime


@dataclass(frozen=True)
class ClinicianInvite:
    token: str
    clinician_id: int
    expires_at: datetime


class InviteService:
    def __init__(self, repo: UnitOfWork, clock: Clock, ttl: timedelta) -> None:
        self.repo = repo
        self.clock = clock
        self.ttl = ttl

    async def invite_patient(
        self,
        practice_id: int,
        consult_at: datetime,
        *,
        clinician_id: int | None = None,
        name: str | None = None,
        patient_id: int | None = None,
        simple: bool | None = None,
        read_aloud: bool | None = None,
        until_consult: bool = False,
    ) -> PatientInvite:
        """``simple`` / ``read_aloud``: chosen by the POH; None lets the patient choose at the start.
        ``until_consult``: the link works until the consult when that is later than the usual time
        (a letter sent weeks ahead, as with invites in bulk)."""
        now = self.clock.now()
        if name is not None and len(name.strip()) > MAX_NAME:
            raise InviteError(f"a name is at most {MAX_NAME} characters")
        if await self.repo.practices.get(practice_id) is None:
            raise InviteError(f"no practice with id {practice_id}")
        if clinician_id is not None:
            clinician = await self.repo.clinicians.get(clinician_id)
            if clinician is None or clinician.practice_id != practice_id:
                raise InviteError(f"no clinician {clinician_id} in practice {practice_id}")
        async with self.repo.transaction():
            if patient_id is None:
                patient_id = await self.repo.patients.add(practice_id, name, now)
            else:
                patient = await self.repo.patients.get(patient_id)
                if (
                    patient is None
                    or patient.practice_id != practice_id
                    or patient.status == PatientStatus.ERASED
                ):
                    raise InviteError(f"no patient {patient_id} in practice {practice_id}")
            for name, value in (("simple_mode", simple), ("read_aloud", read_aloud)):
                if value is not None:
                    await self.repo.patients.set_preference(patient_id, name, value)
            consult_id = await self.repo.consults.add(practice_id, patient_id, clinician_id, consult_at, now)
            token, expires = await self._issue(
                "patient",
                practice_id,
                patient_id=patient_id,
                consult_id=consult_id,
                clinician_id=clinician_id,
                until=consult_at if until_consult else None,
            )
        return PatientInvite(token, patient_id, consult_id, expires)

    async def invite_clinician(self, practice_id: int, name: str) -> ClinicianInvite:
        now = self.clock.now()
        if await self.repo.practices.get(practice_id) is None:
            raise InviteError(f"no practice with id {practice_id}")
        async with self.repo.transaction():
            clinician_id = await self.repo.clinicians.add(practice_id, name, now)
            token, expires = await self._issue("clinician", practice_id, clinician_id=clinician_id)
        return ClinicianInvite(token, clinician_id, expires)

    async def _issue(
        self, kind: str, practice_id: int, until: datetime | None = None, **ids: int | None
    ) -> tuple[str, datetime]:
        """A fresh token; only its hash is stored. It works for the usual time, or until ``until``."""
        now = self.clock.now()
        token = new_token()
        expires = max(now + self.ttl, until) if until else now + self.ttl
        await self.repo.invites.add(
            token_hash=hash_token(token),
            kind=kind,
            practice_id=practice_id,
            expires_at=expires,
            now=now,
            **ids,
        )
        return token, expires

    async def valid_invite(self, token: str) -> Invite | None:
        """The invite for a token, if it exists, is unused and has not expired."""
        if not token or len(token) > 64:
            return None
        invite = await self.repo.invites.by_hash(hash_token(token))
        if invite is None or invite.used_at is not None or invite.expires_at <= self.clock.now():
            return None
        return invite
