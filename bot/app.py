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
from bot.services.health import HealthService, Thresholds
from bot.services.invites import InviteService
from bot.services.locks import KeyedLocks
from bot.services.measurements import SignalRules
from bot.services.notices import PracticeNotices
from bot.services.onboarding import Onboarding
from bot.services.patients import PatientService
from bot.services.plans import PlanService
from bot.services.readaloud import ReadAloud
from bot.services.reminders import ReminderService
from bot.services.retention import RetentionService
from bot.services.safety import SafetyService
from bot.services.voice_answers import VoiceAnswers
from bot.storage import Database, SqliteStore, UnitOfWork
from bot.storage.models import OutboxKind
from bot.storage.ports import Health
from bot.voice.stt import WhisperSTT
from bot.voice.tts import EspeakTTS, PiperTTS, SynthesisError, TextToSpeech, VoiceCache
from scheduler.outbox import OutboxSender
from scheduler.ratelimit import RateLimiter

log = logging.getLogger(__name__)


@dataclass
class _Runtime:
    """What changes while the app runs: the outbox once a channel is attached, the heartbeat."""

    outbox: OutboxSender | None = None
    ticking: asyncio.Lock = field(default_factory=asyncio.Lock)
    stopping: bool = False


@dataclass(frozen=True, kw_only=True)
class App:
    """Every part, built once by :func:`build_app`. Channels (Telegram, the web app, the terminal
    demo) call the services; services never reach through each other."""

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
    notices: PracticeNotices
    retention: RetentionService
    _runtime: _Runtime = field(default_factory=_Runtime, repr=False)

    @property
    def outbox(self) -> OutboxSender | None:
        return self._runtime.outbox

    def attach_channel(self, channel: Channel) -> OutboxSender:
        """Wire the outbox to the channel that will deliver it."""
        limiter = RateLimiter(self.settings.send_rate_per_second, self.settings.send_rate_per_chat_per_second)
        outbox = OutboxSender(self.repo, channel, self.clock, limiter)
        renderers = {
            OutboxKind.AGENDA: self.clinicians.render_outbox_agenda,
            OutboxKind.ALERT: self.safety.render_alert,
            OutboxKind.REMINDER: self.reminders.render,
            OutboxKind.SIGNAL: self.reminders.render_signal,
            OutboxKind.BLOCKED: self.reminders.render_blocked,
            OutboxKind.PLAN_START: self.patients.render_plan_start,
            OutboxKind.REJECTED: self.reminders.render_rejected,
            OutboxKind.REPLY: self.patients.render_reply,
        }
        for kind, renderer in renderers.items():
            outbox.register(kind, renderer)
        outbox.on_blocked = self.reminders.patient_blocked
        outbox.on_rejected = self.reminders.delivery_rejected
        outbox.decorate = self.read_aloud.attach
        self._runtime.outbox = outbox
        return outbox

    async def tick(self) -> int:
        """The scheduler's heartbeat: create due reminders, then send what is due; once a day,
        erase the patients whose retention period is over (``RETENTION_MONTHS``)."""
        if self._runtime.stopping:
            return 0
        async with self._runtime.ticking:
            if self._runtime.stopping:
                return 0
            await self.reminders.materialise()
            sent = await self.outbox.flush() if self.outbox is not None else 0
            await self.retention.daily()
            # Wall-clock time (also under a simulated clock): `python -m bot health` and /healthz
            # report how long ago the scheduler last finished a tick.
            await self.repo.health.beat("scheduler", SystemClock().now())
            return sent

    async def stop_ticks(self, timeout: float = 10.0) -> None:
        """No new heartbeats; wait for the one in hand so nothing is cut off mid-write."""
        self._runtime.stopping = True
        try:
            await asyncio.wait_for(self._runtime.ticking.acquire(), timeout)
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
    notices = PracticeNotices(repo)
    agenda = AgendaService(
        repo,
        catalog,
        settings.zone,
        settings.low_score_threshold,
        analyzer,
        web_base_url=settings.web_base_url,
    )
    safety = SafetyService(
        repo,
        analyzer,
        catalog,
        clock,
        agenda.when,
        notices=notices,
        check_minutes=settings.safety_check_minutes,
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
        notices=notices,
        max_text_chars=settings.max_answer_chars,
    )
    invite_after = settings.plan_invite_after_minutes
    patients = PatientService(
        repo,
        engines,
        catalog,
        clock,
        settings.zone,
        safety,
        plans=plans,
        reminders=reminders,
        locks=locks,
        notices=notices,
        plan_invite_after=timedelta(minutes=invite_after) if invite_after else None,
    )
    clinicians = ClinicianService(repo, agenda, catalog, clock, plans)
    onboarding = Onboarding(repo, invites, patients, clinicians, catalog, clock, safety)
    stt = WhisperSTT(settings.stt_model_dir) if settings.stt_model_dir else None
    return App(
        settings=settings,
        clock=clock,
        catalog=catalog,
        db=db,
        repo=repo,
        engine=engines[INTAKE_FLOW],
        invites=invites,
        agenda=agenda,
        patients=patients,
        clinicians=clinicians,
        onboarding=onboarding,
        safety=safety,
        analyzer=analyzer,
        plans=plans,
        reminders=reminders,
        read_aloud=ReadAloud(repo, catalog, voice_cache(settings)),
        voice_answers=VoiceAnswers(repo, patients, safety, catalog, clock, stt, settings.max_voice_seconds),
        notices=notices,
        retention=RetentionService(repo, clock, settings.zone, settings.retention_months, locks=locks),
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
        try:
            backend = PiperTTS(settings.piper_model)
        except SynthesisError as exc:
            log.warning("read aloud is off: the Piper voice has no usable config (%s)", exc)
            return None
    else:
        backend = EspeakTTS()
        if shutil.which("espeak-ng") is None:
            log.warning("read aloud is off: espeak-ng is not installed")
            return None
    if shutil.which("opusenc") is None:
        log.warning("read aloud is off: opusenc (opus-tools) is not installed")
        return None
    return VoiceCache(backend, settings.voice_cache_dir)


def build_health(
    settings: Settings, store: Health | None, clock: Clock, *, missing: str = ""
) -> HealthService:
    """The health checks of ``python -m bot health`` and ``GET /healthz`` (bot/services/health.py)."""
    from bot.telegram.probe import telegram_probe

    thresholds = Thresholds(
        max_tick_age=timedelta(seconds=settings.health_max_tick_age_seconds),
        max_outbox_age=timedelta(seconds=settings.health_max_outbox_age_seconds),
        timeout=settings.health_timeout_seconds,
    )
    token = settings.bot_token.get_secret_value() if settings.bot_token else None
    probe = telegram_probe(token, settings.telegram_api_url)
    missing = missing or "the database could not be opened"
    return HealthService(store, clock, thresholds, probe, missing=missing)


def setup_logging(level: str) -> None:
    """Plain logs without patient data: our own modules log ids and events only."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiogram's per-update info lines are noise; its warnings and errors stay.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
