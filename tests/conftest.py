from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Update

from bot.app import App, build_app
from bot.clock import FrozenClock
from bot.config import Settings
from bot.content import Catalog
from bot.telegram.handlers import Responder
from bot.telegram.runner import build_dispatcher
from bot.testing.fake_telegram import FakeBotAPIServer, FakeSession, FakeTelegram

# Test layers (see CONTRIBUTING.md). Everything runs by default and in CI; the fast layer is
# ``python3 -m pytest -m "not slow"``. A file of bot processes, browsers, real audio or whole-set
# evaluations goes in here.
SLOW_FILES: dict[str, tuple[str, ...]] = {
    "test_e2e.py": ("e2e", "slow"),
    "test_e2e_reminders.py": ("e2e", "slow"),
    "test_e2e_voice.py": ("e2e", "slow"),
    "test_backup_e2e.py": ("e2e", "slow"),  # a backup while the real bot handles a reminder burst
    "test_deploy_tls.py": ("e2e", "slow"),  # the bot and the web app behind real nginx over TLS
    "test_browser.py": ("browser", "slow"),
    "test_browser_bulk.py": ("browser", "slow"),  # invites in bulk: upload, a bad row, letters
    "test_safety_metamorphic.py": ("slow",),
    "test_voice.py": ("slow",),  # real espeak-ng and opusenc
    "test_wheel.py": ("slow",),  # builds the sdist and wheel, installs it in a fresh virtualenv
    # Operations and web hardening (argon2 per log-in, scrypt per backup, pip and apt lookups):
    # in CI and the full run, not in the minute a developer waits on the engine or the chat.
    "test_web_accounts.py": ("slow",),
    "test_web_security.py": ("slow",),
    "test_retention.py": ("slow",),
    "test_backup.py": ("slow",),
    "test_health.py": ("slow",),
    "test_deploy.py": ("slow",),
}
# Single slow tests inside otherwise fast files: whole-set evaluations, the CLI in its own process,
# deliberate waits.
SLOW_TESTS = frozenset(
    {
        "test_plan_cli",
        "test_clinician_add_and_the_web_command",
        "test_demo_with_answers_file_prints_the_agenda",
        "test_demo_stops_early_with_exit_code_2",
        "test_cli_analyze_adds_the_safety_tier",
        "test_cli_analyze_writes_json_lines",
        "test_lint_content_command",
        "test_sets_are_big_enough_and_apart",
        "test_the_model_is_trained_on_the_current_dev_set_and_never_on_held_out",
        "test_long_agenda_is_split_under_the_limit",
        "test_many_failures_from_one_address_are_slowed_down",
        "test_behind_a_trusted_proxy_one_address_cannot_lock_out_everyone",  # 40 argon2 checks
        "test_forwarded_for_is_ignored_from_an_untrusted_peer",
        "test_the_lock_backs_off_and_a_log_in_resets_it",
        "test_failed_log_ins_locks_throttles_and_log_outs_are_audited",
        "test_unknown_locked_and_wrong_get_one_answer",
        "test_safety_figures_on_dev_and_held_out",
        "test_positive_health_tagging_on_dev_and_held_out",
        "test_cli_evaluate_prints_dev_and_held_out_per_kind",
        "test_everyday_statements_are_left_alone",
        "test_cli_train_refuses_the_held_out_set",
        "test_training_picks_its_threshold_on_the_items_it_gets",
        # tests/test_deploy.py: the Dockerfile's steps (wheel, the locked install, ~90 s), the image's
        # commands in their own processes, a real docker build where a daemon answers
        "test_the_image_builds_with_docker_and_reports_its_health",
        "test_the_dockerfile_steps_give_a_virtualenv_with_exactly_the_lock_and_every_module_importing",
        "test_the_image_commands_run_report_health_and_back_up",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    for name, about in (
        ("e2e", "the real bot process against the fake Bot API over HTTP"),
        ("browser", "real headless Chromium"),
        ("slow", "left out of the fast layer (-m 'not slow')"),
    ):
        config.addinivalue_line("markers", f"{name}: {about}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in SLOW_FILES.get(item.path.name, ()):
            item.add_marker(marker)
        if getattr(item, "originalname", item.name) in SLOW_TESTS:
            item.add_marker("slow")


def next_week_consult() -> str:
    """A consult moment a week from now, as the CLI takes it: tests that show upcoming consults must
    not depend on the day they run (a fixed date in the past hides the consult from ``/agenda``)."""
    return (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%d 14:30")


def spoken_when(consult: str) -> str:
    """How the bot says a CLI consult moment (local time) to the patient: ``dinsdag 1 december om 14:30``."""
    return Catalog().format_when(datetime.strptime(consult, "%Y-%m-%d %H:%M"))


START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday morning in Amsterdam
DIMS = [d.id for d in Catalog().dimensions]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_path=tmp_path / "test.sqlite3",
        bot_token="123456:TEST-token-for-the-fake-api",
        voice_cache_dir=tmp_path / "voice-cache",
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[App]:
    application = await build_app(settings, clock)
    yield application
    await application.close()


class Harness:
    """A real aiogram Dispatcher with our routers, fed by the fake Telegram core in-process."""

    def __init__(self, app: App, core: FakeTelegram) -> None:
        self.app = app
        self.core = core
        self.bot = Bot(core.token, session=FakeSession(core))
        wiring = build_dispatcher(app, self.bot)
        self.dp: Dispatcher = wiring.dp
        self.responder: Responder = wiring.responder

    async def pump(self) -> int:
        """Feed every pending update to the dispatcher, as polling would; returns the count."""
        handled = 0
        while self.core.pending:
            raw = self.core.pending.pop(0)
            await self.feed(raw)
            handled += 1
            if self.app.outbox is not None:
                await self.app.outbox.settle()  # messages the update queued (agenda, alerts)
        return handled

    async def feed(self, raw: dict[str, Any]) -> None:
        update = Update.model_validate(raw, context={"bot": self.bot})
        await self.dp.feed_update(self.bot, update)

    # conveniences
    async def say(self, user_id: int, text: str) -> None:
        self.core.user_sends(user_id, text)
        await self.pump()

    async def tap(self, user_id: int, label: str) -> None:
        self.core.user_taps(user_id, self.core.last_question(user_id), label)
        await self.pump()


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeTelegram, FakeBotAPIServer]]:
    core = FakeTelegram()
    server = FakeBotAPIServer(core)
    await server.start()
    yield core, server
    await server.stop()


@pytest.fixture
def core() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
def harness(app: App, core: FakeTelegram) -> Harness:
    return Harness(app, core)


async def make_practice(app: App, clock: FrozenClock, *, clinician: bool = True) -> dict[str, Any]:
    """A practice with (optionally) a clinician invite and a patient invite one week ahead."""
    practice_id = await app.repo.practices.add("Huisartsenpraktijk De Linde", clock.now())
    out: dict[str, Any] = {"practice_id": practice_id}
    if clinician:
        out["clinician"] = await app.invites.invite_clinician(practice_id, "Anna (POH)")
    consult_at = datetime(2026, 12, 1, 14, 30, tzinfo=app.settings.zone)
    # Preferences chosen on the invite, so the intake starts at consent (tests of the choice: test_voice).
    out["patient"] = await app.invites.invite_patient(
        practice_id, consult_at, name="J. de Vries", read_aloud=False, simple=False
    )
    out["consult_at"] = consult_at
    return out


async def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> tuple[int, str, str]:
    """Run ``python -m bot ARGS`` as its own process; returns (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env if env is not None else {**os.environ},
        stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


__all__ = ["DIMS", "START", "Harness", "make_practice", "run_cli", "timedelta"]
