"""The composition root: settings are read once and every part is built here."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from bot.channels import Channel
from bot.clock import Clock, SimulatedClock, SystemClock
from bot.config import Settings
from bot.content import Catalog
from bot.flows.engine import INTAKE_FLOW, PLAN_FLOW, FlowEngine
from bot.nlp.analyzer import Analyzer, lazy_analyzer
from bot.services.agenda import AgendaService
from bot.services.clinicians import ClinicianService
from bot.services.invites import InviteService
from bot.services.locks import KeyedLocks
from bot.services.measurements import SignalRules
from bot.services.onboarding import Onboarding
from bot.services.patients import PatientService
from bot.services.plans import PlanService
from bot.services.readaloud import ReadAloud
from bot.services.reminders import ReminderService
from bot.services.safety import SafetyService
from bot.services.voice_answers import VoiceAnswers
from bot.storage import Database, SqliteStore, UnitOfWork
from bot.voice.stt import WhisperSTT
from bot.voice.tts import EspeakTTS, PiperTTS, TextToSpeech, VoiceCache
from scheduler.outbox import OutboxSender
from scheduler.ratelimit import RateLimiter

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    clock: Clock
    catalog: Catalog
    db: Database
    repo: UnitOfWork
    engine: FlowEngine
    invites: InviteService
    agenda: AgendaService
    patients: PatientService
    clinicians: ClinicianService
    onboarding: Onboarding
    safety: SafetyService
    analyzer: Callable[[], Analyzer]
    plans: PlanService
    reminders: ReminderService
    read_aloud: ReadAloud
    voice_answers: VoiceAnswers
    outbox: OutboxSender | None = field(default=None)
    _ticking: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _stopping: bool = field(default=False, init=False, repr=False)

    def attach_channel(self, channel: Channel) -> OutboxSender:
        """Wire the outbox to the channel that will deliver it."""
        limiter = RateLimiter(self.settings.send_rate_per_second, self.settings.send_rate_per_chat_per_second)
        self.outbox = OutboxSender(self.repo, channel, self.clock, limiter)
        self.outbox.register("agenda", self.clinicians.render_outbox_agenda)
        self.outbox.register("alert", self.safety.render_alert)
        self.outbox.register("reminder", self.reminders.render)
        self.outbox.register("signal", self.reminders.render_signal)
        self.outbox.register("blocked", self.reminders.render_blocked)
        self.outbox.register("plan_start", self.patients.render_plan_start)
        self.outbox.register("rejected", self.reminders.render_rejected)
        self.outbox.on_blocked = self.reminders.patient_blocked
        self.outbox.on_rejected = self.reminders.delivery_rejected
        self.outbox.decorate = self.read_aloud.attach
        return self.outbox

    async def tick(self) -> int:
        """The scheduler's heartbeat: create due reminders, then send what is due."""
        if self._stopping:
            return 0
        async with self._ticking:
            if self._stopping:
                return 0
            await self.reminders.materialise()
            return await self.outbox.flush() if self.outbox is not None else 0

    async def stop_ticks(self, timeout: float = 10.0) -> None:
        """No new heartbeats; wait for the one in hand so nothing is cut off mid-write."""
        self._stopping = True
        try:
            await asyncio.wait_for(self._ticking.acquire(), timeout)
        except TimeoutError:
            log.warning("a scheduler tick was still running at shutdown")

    async def close(self) -> None:
        await self.db.close()


async def build_app(settings: Settings, clock: Clock | None = None) -> App:
    if clock is None and settings.simulated_clock_start is not None:
        clock = SimulatedClock(settings.simulated_clock_start, settings.simulated_clock_speed)
    clock = clock or SystemClock()
    catalog = Catalog(settings.content_dir)
    db = await Database.open(settings.database_path)
    repo = SqliteStore(db, clock)
    engines = {
        flow: FlowEngine(
            catalog,
            flow,
            low_score_threshold=settings.low_score_threshold,
            max_text_chars=settings.max_answer_chars,
        )
        for flow in (INTAKE_FLOW, PLAN_FLOW)
    }
    invites = InviteService(repo, clock, timedelta(hours=settings.invite_ttl_hours))
    analyzer = lazy_analyzer(settings.content_dir)
    agenda = AgendaService(repo, catalog, settings.zone, settings.low_score_threshold, analyzer)
    agenda.web_base_url = settings.web_base_url
    safety = SafetyService(
        repo, analyzer, catalog, clock, agenda.when, check_minutes=settings.safety_check_minutes
    )
    plans = PlanService(repo, clock, settings.zone, settings.quiet)
    locks = KeyedLocks()
    reminders = ReminderService(
        repo,
        plans,
        catalog,
        clock,
        settings.zone,
        quiet=settings.quiet,
        max_late=timedelta(hours=settings.reminder_max_late_hours),
        rules=SignalRules.load(settings.signal_rules_file),
        locks=locks,
        max_text_chars=settings.max_answer_chars,
    )
    patients = PatientService(
        repo, engines, catalog, clock, settings.zone, safety, plans=plans, reminders=reminders, locks=locks
    )
    if settings.plan_invite_after_minutes:
        patients.plan_invite_after = timedelta(minutes=settings.plan_invite_after_minutes)
    clinicians = ClinicianService(repo, agenda, catalog, clock, plans)
    onboarding = Onboarding(repo, invites, patients, clinicians, catalog, clock, safety)
    return App(
        settings,
        clock,
        catalog,
        db,
        repo,
        engines[INTAKE_FLOW],
        invites,
        agenda,
        patients,
        clinicians,
        onboarding,
        safety,
        analyzer,
        plans,
        reminders,
        ReadAloud(repo, catalog, voice_cache(settings)),
        VoiceAnswers(
            repo,
            patients,
            safety,
            catalog,
            clock,
            WhisperSTT(settings.stt_model_dir) if settings.stt_model_dir else None,
            settings.max_voice_seconds,
        ),
    )


def voice_cache(settings: Settings) -> VoiceCache | None:
    """The text-to-speech backend the settings ask for, with its cache; None when off or missing."""
    backend: TextToSpeech
    if settings.tts_backend == "off":
        return None
    if settings.tts_backend == "piper":
        if settings.piper_model is None or shutil.which("piper") is None:
            log.warning("TTS_BACKEND=piper needs PIPER_MODEL and the piper program")
            return None
        backend = PiperTTS(settings.piper_model)
    else:
        backend = EspeakTTS()
        if shutil.which("espeak-ng") is None:
            log.warning("read aloud is off: espeak-ng is not installed")
            return None
    if shutil.which("opusenc") is None:
        log.warning("read aloud is off: opusenc (opus-tools) is not installed")
        return None
    return VoiceCache(backend, settings.voice_cache_dir)


def setup_logging(level: str) -> None:
    """Plain logs without patient data: our own modules log ids and events only."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiogram's per-update info lines are noise; its warnings and errors stay.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
