"""The composition root: settings are read once and every part is built here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from bot.channels import Channel
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.content import Catalog
from bot.flows.intake import IntakeEngine
from bot.nlp.analyzer import Analyzer, lazy_analyzer
from bot.services.agenda import AgendaService
from bot.services.clinicians import ClinicianService
from bot.services.invites import InviteService
from bot.services.onboarding import Onboarding
from bot.services.patients import PatientService
from bot.services.plans import PlanService
from bot.services.safety import SafetyService
from bot.storage import Database, Repository
from bot.storage.plans import PlanRepository
from scheduler.outbox import OutboxSender
from scheduler.ratelimit import RateLimiter


@dataclass
class App:
    settings: Settings
    clock: Clock
    catalog: Catalog
    db: Database
    repo: Repository
    engine: IntakeEngine
    invites: InviteService
    agenda: AgendaService
    patients: PatientService
    clinicians: ClinicianService
    onboarding: Onboarding
    safety: SafetyService
    analyzer: Callable[[], Analyzer]
    plans: PlanService
    outbox: OutboxSender | None = field(default=None)

    def attach_channel(self, channel: Channel) -> OutboxSender:
        """Wire the outbox to the channel that will deliver it."""
        limiter = RateLimiter(self.settings.send_rate_per_second, self.settings.send_rate_per_chat_per_second)
        self.outbox = OutboxSender(self.repo, channel, self.clock, limiter)
        self.outbox.register("agenda", self.clinicians.render_outbox_agenda)
        self.outbox.register("alert", self.safety.render_alert)
        return self.outbox

    async def close(self) -> None:
        await self.db.close()


async def build_app(settings: Settings, clock: Clock | None = None) -> App:
    clock = clock or SystemClock()
    catalog = Catalog(settings.content_dir)
    db = await Database.open(settings.database_path)
    repo = Repository(db)
    engine = IntakeEngine(
        catalog,
        low_score_threshold=settings.low_score_threshold,
        max_text_chars=settings.max_answer_chars,
    )
    invites = InviteService(repo, clock, timedelta(hours=settings.invite_ttl_hours))
    analyzer = lazy_analyzer(settings.content_dir)
    agenda = AgendaService(repo, catalog, settings.zone, settings.low_score_threshold, analyzer)
    safety = SafetyService(repo, analyzer, catalog, clock, agenda.when)
    patients = PatientService(repo, engine, catalog, clock, settings.zone, safety)
    clinicians = ClinicianService(repo, agenda, catalog, clock)
    onboarding = Onboarding(repo, invites, patients, clinicians, catalog, clock, safety)
    return App(
        settings,
        clock,
        catalog,
        db,
        repo,
        engine,
        invites,
        agenda,
        patients,
        clinicians,
        onboarding,
        safety,
        analyzer,
        PlanService(PlanRepository(db), clock, settings.zone),
    )


def setup_logging(level: str) -> None:
    """Plain logs without patient data: our own modules log ids and events only."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiogram's per-update info lines are noise; its warnings and errors stay.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
