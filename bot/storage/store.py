"""The SQLite unit of work: one ``Database`` (one writer, one reader) and a repository per aggregate."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager

from bot.clock import Clock, SystemClock
from bot.storage import identity
from bot.storage.consults import AnswerRepository, ConsentRepository, ConsultRepository, InviteRepository
from bot.storage.conversations import ConversationRepository, UpdateRepository
from bot.storage.db import Database
from bot.storage.health import HealthRepository
from bot.storage.inbox import InboxRepository
from bot.storage.outbox import OutboxRepository
from bot.storage.people import ClinicianRepository, PatientRepository, PracticeRepository, VoiceNoteRepository
from bot.storage.plans import PlanRepository
from bot.storage.reminders import ReminderRepository
from bot.storage.retention import RetentionRepository
from bot.storage.safety import SafetyRepository
from bot.storage.web import WebRepository


class SqliteStore:
    """Implements ``bot.storage.ports.UnitOfWork`` over one SQLite file."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.practices = PracticeRepository(db)
        self.clinicians = ClinicianRepository(db)
        self.patients = PatientRepository(db)
        self.voice_notes = VoiceNoteRepository(db)
        self.consults = ConsultRepository(db)
        self.invites = InviteRepository(db)
        self.consents = ConsentRepository(db)
        self.answers = AnswerRepository(db)
        self.conversations = ConversationRepository(db)
        self.updates = UpdateRepository(db)
        self.safety = SafetyRepository(db)
        self.outbox = OutboxRepository(db)
        self.inbox = InboxRepository(db, clock or SystemClock())
        self.plans = PlanRepository(db)
        self.reminders = ReminderRepository(db)
        self.web = WebRepository(db)
        self.health = HealthRepository(db)
        self.retention = RetentionRepository(db)

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self.db.transaction()

    def scope(self) -> AbstractContextManager[None]:
        return identity.scope()
