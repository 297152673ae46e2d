"""``python -m bot health`` and ``GET /healthz``: one set of checks (bot/services/health.py), each able
to fail on its own: the database's test write, migrations behind or ahead, an old scheduler tick,
an old due outbox row, and Telegram's getMe against the fake Bot API (refused token, no answer in
time, nothing listening, no token at all)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.app import App, build_app, build_health
from bot.cli import main
from bot.clock import FrozenClock, SystemClock
from bot.config import Settings
from bot.services.health import Report
from bot.storage.db import known_migrations
from bot.testing.fake_telegram import FakeBotAPIServer, FakeTelegram
from bot.web.server import WebApp

CHAT = 734_912_345


@pytest.fixture
def settings(settings: Settings, fake: tuple[FakeTelegram, FakeBotAPIServer]) -> Settings:
    core, server = fake
    return settings.model_copy(
        update={"telegram_api_url": server.base_url, "bot_token": SecretStr(core.token)}
    )


async def report_of(app: App, **changes: Any) -> dict[str, Any]:
    if isinstance(changes.get("bot_token"), str):
        changes["bot_token"] = SecretStr(changes["bot_token"])
    settings = app.settings.model_copy(update=changes)
    report: Report = await build_health(settings, app.repo.health, app.clock).report()
    data = report.to_json()
    assert data["status"] == ("ok" if report.healthy else "fail")
    return data


def statuses(data: dict[str, Any]) -> dict[str, str]:
    return {name: check["status"] for name, check in data["checks"].items()}


async def test_a_fresh_database_is_unhealthy_until_the_scheduler_ticks(app: App) -> None:
    data = await report_of(app)
    assert statuses(data) == {
        "database": "ok",
        "migrations": "ok",
        "scheduler": "fail",
        "outbox": "ok",
        "telegram": "ok",
    }
    assert data["checks"]["migrations"]["applied"] == max(known_migrations())
    await app.tick()
    data = await report_of(app)
    assert data["status"] == "ok" and data["checks"]["scheduler"]["last_tick_age_s"] < 60


async def test_a_tick_older_than_the_setting_fails(app: App, clock: FrozenClock) -> None:
    await app.tick()
    later = FrozenClock(SystemClock().now() + timedelta(minutes=6))
    service = build_health(app.settings, app.repo.health, app.clock)
    service.wall = later
    data = (await service.report()).to_json()
    assert data["checks"]["scheduler"]["status"] == "fail" and data["checks"]["scheduler"]["max_age_s"] == 300
    service = build_health(
        app.settings.model_copy(update={"health_max_tick_age_seconds": 600}), app.repo.health, app.clock
    )
    service.wall = later
    assert (await service.report()).healthy


async def test_an_old_due_outbox_row_fails_and_a_future_one_does_not_count(
    app: App, clock: FrozenClock
) -> None:
    await app.tick()
    now = clock.now()
    await app.repo.outbox.enqueue("reminder", CHAT, {"reminder_id": 1}, now + timedelta(hours=3), now)
    data = await report_of(app)
    assert data["checks"]["outbox"] == {
        "status": "ok",
        "detail": "nothing waiting",
        "pending_due": 0,
        "oldest_age_s": 0.0,
        "max_age_s": 900.0,
    }
    old = await app.repo.outbox.enqueue("agenda", CHAT, {}, now - timedelta(minutes=20), now)
    await app.repo.outbox.enqueue("agenda", CHAT, {}, now - timedelta(minutes=1), now)
    data = await report_of(app)
    outbox = data["checks"]["outbox"]
    assert outbox["status"] == "fail" and outbox["pending_due"] == 2 and outbox["oldest_age_s"] == 1200
    assert data["status"] == "fail"
    await app.repo.outbox.sent(old, 1, now)
    outbox = (await report_of(app))["checks"]["outbox"]
    assert outbox["status"] == "ok" and outbox["pending_due"] == 1 and outbox["oldest_age_s"] == 60


async def test_migrations_behind_or_ahead_fail(app: App) -> None:
    await app.tick()
    newest = max(known_migrations())
    await app.db.execute("DELETE FROM schema_migrations WHERE version = ?", (newest,))
    check = (await report_of(app))["checks"]["migrations"]
    assert check["status"] == "fail" and "not applied" in check["detail"]
    await app.db.execute(
        "INSERT INTO schema_migrations VALUES (?, 'x', '2026-01-01'), (9999, 'future', '2030-01-01')",
        (newest,),
    )
    check = (await report_of(app))["checks"]["migrations"]
    assert check["status"] == "fail" and "newer than this code" in check["detail"]


async def test_a_database_that_takes_no_writes_fails_and_the_rest_is_unknown(app: App) -> None:
    await app.tick()
    await app.db.conn.execute("PRAGMA query_only=ON")  # as a read-only file or a full disk would
    data = await report_of(app)
    assert statuses(data)["database"] == "fail" and data["checks"]["database"]["writable"] is False
    assert "readonly" in data["checks"]["database"]["detail"]
    assert {statuses(data)[n] for n in ("migrations", "scheduler", "outbox")} == {"unknown"}
    assert data["status"] == "fail"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_telegram_refused_slow_unreachable_or_not_configured(
    app: App, fake: tuple[FakeTelegram, FakeBotAPIServer]
) -> None:
    core, _ = fake
    await app.tick()
    wrong = "999:not-our-token"
    check = (await report_of(app, bot_token=wrong))["checks"]["telegram"]
    assert check == {"status": "fail", "detail": "getMe failed: the token was refused (401)"}
    core.latency = 1.0
    check = (await report_of(app, health_timeout_seconds=0.2))["checks"]["telegram"]
    assert check["status"] == "fail" and "no answer within 0.2 s" in check["detail"]
    core.latency = 0.0
    nobody = f"http://127.0.0.1:{_free_port()}"
    data = await report_of(app, telegram_api_url=nobody)
    assert (
        data["checks"]["telegram"]["status"] == "fail"
        and "not reachable" in data["checks"]["telegram"]["detail"]
    )
    assert core.token not in json.dumps(data) and "not-our-token" not in json.dumps(data)
    data = await report_of(app, bot_token=None)
    assert data["checks"]["telegram"] == {"status": "unknown", "detail": "not checked: no BOT_TOKEN"}
    assert data["status"] == "ok"  # unknown is not a failure


@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(WebApp(app).routes())) as test_client:
        yield test_client


async def test_healthz_needs_no_log_in_and_holds_no_patient_data(
    app: App, clock: FrozenClock, client: TestClient, fake: tuple[FakeTelegram, FakeBotAPIServer]
) -> None:
    core, _ = fake
    practice = await app.repo.practices.add("Huisartsenpraktijk De Linde", clock.now())
    invite = await app.invites.invite_patient(practice, clock.now() + timedelta(days=3), name="J. de Vries")
    await app.repo.patients.link(invite.patient_id, CHAT, CHAT)
    await app.repo.outbox.enqueue("agenda", CHAT, {"text": "Mijn kleinkinderen"}, clock.now(), clock.now())

    response = await client.get("/healthz", allow_redirects=False)
    assert response.status == 503  # no scheduler tick yet
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.text()
    data = json.loads(body)
    assert data["status"] == "fail" and data["checks"]["scheduler"]["status"] == "fail"
    assert data["checks"]["outbox"]["pending_due"] == 1
    for secret in (
        "de Vries",
        "Linde",
        "kleinkinderen",
        str(CHAT),
        core.token,
        str(app.settings.database_path),
    ):
        assert secret not in body

    await app.tick()
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json())["status"] == "ok"
    # Telegram's answer is kept a while: a monitor polling /healthz does not call getMe each time.
    assert [m for m, _ in core.calls].count("getme") == 1


# -- the command --------------------------------------------------------------------------------
@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "data" / "bot.sqlite3"
    monkeypatch.setenv("DATABASE_PATH", str(database))
    monkeypatch.setenv("BOT_TOKEN", "")
    yield database


def _health(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["health", *args])
    return code, capsys.readouterr().out


def test_the_health_command_exit_code_and_json(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _health(capsys, "--json")
    assert code == 1 and json.loads(out)["checks"]["database"]["detail"].startswith("no database at")
    assert not cli_env.exists()  # a health check creates nothing

    async def ticked() -> None:
        app = await build_app(Settings(_env_file=None, database_path=cli_env))
        try:
            await app.tick()
        finally:
            await app.close()

    asyncio.run(ticked())
    code, out = _health(capsys, "--json")
    data = json.loads(out)
    assert code == 0, out
    assert data["status"] == "ok" and data["checks"]["telegram"]["status"] == "unknown"
    code, out = _health(capsys)
    assert code == 0 and out.splitlines()[-1] == "healthy" and "scheduler ok" in " ".join(out.split())


def test_the_health_command_does_not_migrate(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    async def ticked() -> None:
        app = await build_app(Settings(_env_file=None, database_path=cli_env))
        try:
            await app.tick()
        finally:
            await app.close()

    asyncio.run(ticked())
    conn = sqlite3.connect(cli_env)
    conn.execute("DELETE FROM schema_migrations WHERE version = ?", (max(known_migrations()),))
    conn.commit()
    conn.close()
    code, out = _health(capsys)
    assert code == 1 and "migrations" in out and "not applied" in out and out.splitlines()[-1] == "UNHEALTHY"
    code, out = _health(capsys)
    assert code == 1  # still behind: the check looked, it did not fix
