"""Retention (AVG storage limitation, bot/services/retention.py): who is due, keeping longer, the
daily erasure from the tick and its audit rows, and the /retention page (list, keep, erase now by
an admin, bad input). Real SQLite and a frozen clock; RETENTION_MONTHS=12 unless a test says."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App, build_app
from bot.clock import FrozenClock
from bot.config import Settings
from bot.services.locks import KeyedLocks
from bot.services.retention import AUTOMATIC, NOTICE, Actor, KeepError, RetentionService, add_months
from bot.storage.models import ConsultStatus, PatientStatus
from bot.web.server import WebApp
from scheduler.schedules import Schedule
from tests.catalog import CATALOG
from tests.conftest import START
from tests.test_web import log_in, make_account

MONTHS = 12
TODAY = date(2026, 11, 23)  # START in Amsterdam
POH = Actor("Anna (POH)", practice_id=None)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_path=tmp_path / "test.sqlite3",
        bot_token="123456:TEST-token-for-the-fake-api",
        voice_cache_dir=tmp_path / "voice-cache",
        retention_months=MONTHS,
    )


def months_ago(months: int, days: int = 0) -> datetime:
    """10:00 in Amsterdam, ``months`` calendar months (and ``days``) before START."""
    day = add_months(TODAY, -months) - timedelta(days=days)
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


async def patient(app: App, clock: FrozenClock, practice: int, consult_at: datetime) -> tuple[int, int]:
    """A patient invited two weeks before a consult at ``consult_at``; (patient id, consult id)."""
    saved = clock.now()
    clock.set(consult_at - timedelta(days=14))
    invite = await app.invites.invite_patient(practice, consult_at, name="Fatima Yılmaz")
    clock.set(saved)
    return invite.patient_id, invite.consult_id


async def settled(app: App) -> None:
    """The setting has held for longer than the notice (as if the daily run saw it 60 days ago)."""
    long_ago = TODAY - timedelta(days=60)
    assert await app.repo.retention.claim_day(long_ago, MONTHS, long_ago)


async def world(app: App, clock: FrozenClock) -> dict[str, Any]:
    """One practice: a due patient, one due in ten days, one not yet, one kept, one whose hold ran
    out, one erased by /wis, one with a plan still running, one who answered a reminder lately;
    and a due patient of another practice."""
    practice = await app.repo.practices.add("De Linde", clock.now())
    other = await app.repo.practices.add("De Eik", clock.now())
    ids: dict[str, Any] = {"practice": practice, "other": other}
    ids["due"] = await patient(app, clock, practice, months_ago(13))
    ids["soon"] = await patient(app, clock, practice, months_ago(12, days=-10))
    ids["young"] = await patient(app, clock, practice, months_ago(6))
    ids["kept"] = await patient(app, clock, practice, months_ago(14))
    ids["expired"] = await patient(app, clock, practice, months_ago(15))
    ids["erased"] = await patient(app, clock, practice, months_ago(16))
    ids["running"] = await patient(app, clock, practice, months_ago(18))
    ids["answered"] = await patient(app, clock, practice, months_ago(20))
    ids["foreign"] = await patient(app, clock, other, months_ago(13))
    kept, expired = ids["kept"][0], ids["expired"][0]
    await app.repo.retention.add_hold(
        kept, TODAY + timedelta(days=100), "Nog in behandeling", None, "Anna", START
    )
    await app.repo.retention.add_hold(
        expired, TODAY, "Was nog nodig", None, "Anna", START - timedelta(days=90)
    )
    await app.repo.patients.erase(ids["erased"][0], START - timedelta(days=30))
    # A plan that still runs: its goal is old, but the bot still sends its reminders.
    clock.set(months_ago(18))
    await app.plans.add_goal(ids["running"][0], "Elke dag wandelen", "patient")
    # A goal ended long ago, and an answer to its reminder two months ago: that is the last activity.
    goal = await app.plans.add_goal(ids["answered"][0], "Minder suiker", "patient")
    daily = Schedule("daily", time(9), clock.now().date())
    action = await app.plans.add_action(goal, "Thee zonder suiker", daily, "patient")
    clock.set(months_ago(17))
    await app.plans.end_goal(goal)
    clock.set(months_ago(2))  # a late answer to an old reminder still counts
    reminder = await app.repo.reminders.add(
        ids["answered"][0], goal, action, "action", clock.now(), "pending", clock.now()
    )
    assert reminder is not None
    await app.repo.reminders.answer(reminder, clock.now(), status="done")
    clock.set(START)
    return ids


def audit_rows(app: App) -> list[sqlite3.Row]:
    db = sqlite3.connect(app.settings.database_path)
    db.row_factory = sqlite3.Row
    return list(db.execute("SELECT * FROM audit_log ORDER BY id"))


async def status_of(app: App, patient_id: int) -> str:
    found = await app.repo.patients.get(patient_id)
    assert found is not None
    return found.status


# -- the rule ----------------------------------------------------------------------------------
async def test_who_is_due_who_is_soon_and_who_is_not(app: App, clock: FrozenClock) -> None:
    ids = await world(app, clock)
    await settled(app)
    listed = {s.patient_id: s for s in await app.retention.standings()}
    due = {s.patient_id for s in await app.retention.due()}
    assert due == {ids["due"][0], ids["expired"][0], ids["foreign"][0]}
    assert ids["soon"][0] in listed and not listed[ids["soon"][0]].due
    assert listed[ids["soon"][0]].erase_on == TODAY + timedelta(days=10)
    for name in ("young", "kept", "erased", "running", "answered"):
        assert ids[name][0] not in listed, name
    # The last activity is the consult's planned moment, shown as its local date.
    assert listed[ids["due"][0]].last_activity == months_ago(13).date()
    assert listed[ids["due"][0]].consult_id == ids["due"][1]
    # Only one practice's patients when asked for one.
    practice = {s.patient_id for s in await app.retention.due(ids["practice"])}
    assert ids["foreign"][0] not in practice and ids["due"][0] in practice


async def test_a_hold_keeps_until_its_day_then_the_patient_is_due(app: App, clock: FrozenClock) -> None:
    ids = await world(app, clock)
    await settled(app)
    kept = ids["kept"][0]
    clock.set(START + timedelta(days=80))  # the hold ends in 20 days: on the list, not due
    soon = {s.patient_id: s for s in await app.retention.standings()}
    assert soon[kept].kept_until == TODAY + timedelta(days=100) and not soon[kept].due
    clock.set(START + timedelta(days=100))
    assert kept in {s.patient_id for s in await app.retention.due()}


async def test_the_setting_off_erases_nobody(app: App, clock: FrozenClock) -> None:
    ids = await world(app, clock)
    off = RetentionService(app.repo, clock, app.settings.zone, 0, locks=KeyedLocks())
    assert not off.enabled and await off.standings() == [] and await off.due() == []
    assert await off.daily() == 0
    assert await status_of(app, ids["due"][0]) == PatientStatus.INVITED
    assert (await off.overview(ids["practice"])).months == 0


async def test_nobody_goes_before_the_notice_after_the_setting_changes(app: App, clock: FrozenClock) -> None:
    """Switching retention on (or shortening it) lists everyone first: the first erasures come
    NOTICE after the daily run first saw the value."""
    ids = await world(app, clock)
    assert await app.retention.daily() == 0  # the first run: everyone due gets 30 days' notice
    listed = {s.patient_id: s for s in await app.retention.standings()}
    assert listed[ids["due"][0]].erase_on == TODAY + NOTICE and not listed[ids["due"][0]].due
    clock.set(START + NOTICE - timedelta(days=1))
    assert await app.retention.daily() == 0
    assert await status_of(app, ids["due"][0]) == PatientStatus.INVITED
    clock.set(START + NOTICE)
    assert await app.retention.daily() == 4  # the three due, and the one due in ten days
    assert await status_of(app, ids["soon"][0]) == PatientStatus.ERASED
    # Another value starts the notice again.
    shorter = RetentionService(app.repo, clock, app.settings.zone, 6, locks=KeyedLocks())
    clock.set(START + NOTICE + timedelta(days=1))
    assert await shorter.daily() == 0
    assert await status_of(app, ids["young"][0]) == PatientStatus.INVITED


async def test_keep_checks_its_input_and_is_audited_without_the_reason(app: App, clock: FrozenClock) -> None:
    ids = await world(app, clock)
    await settled(app)
    due = ids["due"][0]
    for months in (0, -3, 121, 10**30):
        with pytest.raises(KeepError):
            app.retention.keep_until(months)
    until = app.retention.keep_until(6)
    assert until == date(2027, 5, 23)
    for reason in ("", "   ", "x" * 501, "twee\nregels", "nul\x00teken"):
        with pytest.raises(KeepError):
            await app.retention.keep(due, until, reason, POH)
    with pytest.raises(KeepError):
        await app.retention.keep(due, TODAY, "Vandaag", POH)
    other_practice = Actor("Eva", account_id=3, practice_id=ids["other"])
    assert not await app.retention.keep(due, until, "Niet mijn patiënt", other_practice)
    assert not await app.retention.keep(ids["erased"][0], until, "Al gewist", POH)
    assert await app.retention.keep(due, until, "Wacht op de uitslag van Yılmaz", POH)
    assert due not in {s.patient_id for s in await app.retention.standings()}
    rows = [r for r in audit_rows(app) if r["event"] == "retention_keep"]
    assert len(rows) == 1 and rows[0]["patient_id"] == due and rows[0]["detail"] == "kept until 2027-05-23"
    assert rows[0]["user_name"] == "Anna (POH)" and rows[0]["consult_id"] == ids["due"][1]
    assert "uitslag" not in repr([tuple(r) for r in audit_rows(app)])


# -- the daily run -----------------------------------------------------------------------------
async def test_the_daily_tick_erases_exactly_the_due_ones_and_audits_them(
    app: App, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await world(app, clock)
    await settled(app)
    caplog.set_level(logging.INFO)
    await app.tick()
    due = {ids["due"][0], ids["expired"][0], ids["foreign"][0]}
    for name, (patient_id, consult_id) in [(k, v) for k, v in ids.items() if isinstance(v, tuple)]:
        status = await status_of(app, patient_id)
        consult = await app.repo.consults.get(consult_id)
        assert consult is not None
        if patient_id in due or name == "erased":
            assert status == PatientStatus.ERASED and consult.status == ConsultStatus.ERASED, name
        else:
            assert status != PatientStatus.ERASED, name
    erased = await app.repo.patients.get(ids["due"][0])
    assert erased is not None and erased.display_name is None
    rows = [r for r in audit_rows(app) if r["event"] == "retention_erase"]
    assert {r["patient_id"] for r in rows} == due and len(rows) == 3
    assert all(r["user_name"] == "retention" and r["account_id"] is None for r in rows)
    assert {r["practice_id"] for r in rows} == {ids["practice"], ids["other"]}
    assert all(r["detail"].startswith("automatic; last activity ") for r in rows)
    # The hold of the patient whose hold ran out went with them (its reason was about them).
    db = sqlite3.connect(app.settings.database_path)
    assert (
        db.execute(
            "SELECT COUNT(*) FROM retention_holds WHERE patient_id = ?", (ids["expired"][0],)
        ).fetchone()[0]
        == 0
    )
    assert "Yılmaz" not in caplog.text and "Was nog nodig" not in caplog.text
    assert "retention: daily run erased 3 patient(s)" in caplog.text
    # Once a day: later the same day nothing goes, not even a patient due since the run.
    clock.advance(timedelta(hours=3))
    late, _ = await patient(app, clock, ids["practice"], months_ago(14))
    assert late in {s.patient_id for s in await app.retention.due()}
    await app.tick()
    assert await status_of(app, late) == PatientStatus.INVITED
    clock.set(START + timedelta(days=10))
    soon = ids["soon"][0]
    assert await app.retention.daily() == 2
    assert await status_of(app, soon) == await status_of(app, late) == PatientStatus.ERASED
    assert len([r for r in audit_rows(app) if r["event"] == "retention_erase"]) == 5


async def test_one_erasure_that_fails_is_rolled_back_and_the_others_go_on(
    app: App, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await world(app, clock)
    await settled(app)
    audit = app.repo.web.audit

    async def failing(*args: Any, **kwargs: Any) -> None:
        if kwargs.get("patient_id") == ids["due"][0]:
            raise sqlite3.OperationalError("disk I/O error")
        await audit(*args, **kwargs)

    monkeypatch.setattr(app.repo.web, "audit", failing)
    assert await app.retention.daily() == 2
    # Its erasure and its audit row are one transaction: without the row, nothing was erased.
    assert await status_of(app, ids["due"][0]) == PatientStatus.INVITED
    consult = await app.repo.consults.get(ids["due"][1])
    assert consult is not None and consult.status == ConsultStatus.INVITED
    assert f"erasing patient {ids['due'][0]} failed (OperationalError)" in caplog.text
    assert await status_of(app, ids["expired"][0]) == PatientStatus.ERASED


async def test_erase_by_hand_only_for_listed_patients(app: App, clock: FrozenClock) -> None:
    ids = await world(app, clock)
    await settled(app)
    admin = Actor("Bert (beheer)", account_id=2, practice_id=ids["practice"])
    assert not await app.retention.erase(ids["young"][0], admin, only_due=False)
    assert not await app.retention.erase(ids["foreign"][0], admin, only_due=False)
    assert not await app.retention.erase(ids["soon"][0], AUTOMATIC, only_due=True)
    assert await app.retention.erase(ids["soon"][0], admin, only_due=False)
    assert not await app.retention.erase(ids["soon"][0], admin, only_due=False)  # once
    rows = [r for r in audit_rows(app) if r["event"] == "retention_erase"]
    assert (
        len(rows) == 1 and rows[0]["user_name"] == "Bert (beheer)" and rows[0]["detail"].startswith("by hand")
    )


# -- the web page ------------------------------------------------------------------------------
@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(WebApp(app).routes())) as test_client:
        yield test_client


async def web_world(app: App, clock: FrozenClock) -> dict[str, Any]:
    ids = await world(app, clock)
    await settled(app)
    await make_account(app, clock, ids["practice"], "anna", "Anna (POH)")
    await make_account(app, clock, ids["practice"], "beheer", "Bert (beheer)", "admin")
    return ids


def problem(page: str) -> str:
    start = page.find('class="problem" role="alert">')
    return page[start : page.find("</p>", start)] if start >= 0 else ""


async def test_the_page_lists_due_and_soon_by_consult_number_without_names(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    ids = await web_world(app, clock)
    csrf = await log_in(client, clock)
    response = await client.get("/retention")
    page = await response.text()
    assert response.status == 200
    for name in ("due", "expired", "soon", "kept"):
        consult = ids[name][1]
        assert f'href="/consult/{consult}"' in page, name
    for name in ("young", "running", "answered", "foreign"):
        assert f'href="/consult/{ids[name][1]}"' not in page, name
    assert "Fatima" not in page and "Yılmaz" not in page
    assert CATALOG.t("web.retention.due") in page and CATALOG.t("web.retention.soon") in page
    assert "Nog in behandeling" in page  # the kept list with the POH's reason
    assert f'action="/retention/{ids["due"][1]}/keep"' in page and csrf in page
    assert "/erase" not in page  # erase now is for an admin
    assert ("view_retention", None) in [(r["event"], r["patient_id"]) for r in audit_rows(app)]


async def test_keep_from_the_page_is_audited_and_takes_the_patient_off(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    ids = await web_world(app, clock)
    csrf = await log_in(client, clock)
    consult = ids["due"][1]
    response = await client.post(
        f"/retention/{consult}/keep",
        data={"csrf": csrf, "months": "6", "reason": "Wacht op de specialist"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/retention?bewaard=1"
    page = await (await client.get("/retention?bewaard=1")).text()
    assert CATALOG.t("web.retention.kept_done") in page and "Wacht op de specialist" in page
    rows = [r for r in audit_rows(app) if r["event"] == "retention_keep"]
    assert len(rows) == 1 and rows[0]["patient_id"] == ids["due"][0] and rows[0]["user_name"] == "Anna (POH)"
    assert rows[0]["client_address"] and "specialist" not in (rows[0]["detail"] or "")
    assert ids["due"][0] not in {s.patient_id for s in await app.retention.standings()}


async def test_bad_input_to_keep_is_a_dutch_400(app: App, clock: FrozenClock, client: TestClient) -> None:
    ids = await web_world(app, clock)
    csrf = await log_in(client, clock)
    consult = ids["due"][1]
    months = CATALOG.t("web.retention.bad_months")
    reason = CATALOG.t("web.retention.bad_reason")
    for data, message in (
        ({"months": "-3", "reason": "Reden"}, months),
        ({"months": "0", "reason": "Reden"}, months),
        ({"months": "9" * 30, "reason": "Reden"}, months),
        ({"months": "121", "reason": "Reden"}, months),
        ({"months": "zes", "reason": "Reden"}, months),
        ({"months": "٣", "reason": "Reden"}, months),
        ({"months": "6", "reason": ""}, reason),
        ({"months": "6", "reason": "  "}, reason),
        ({"months": "6", "reason": "x" * 501}, reason),
        ({"months": "6"}, reason),
    ):
        response = await client.post(f"/retention/{consult}/keep", data={"csrf": csrf, **data})
        assert response.status == 400, data
        assert message in problem(await response.text()), data
    form = b"csrf=" + csrf.encode() + b"&months=6&reason=\xff\xfe"
    response = await client.post(
        f"/retention/{consult}/keep", data=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 400 and CATALOG.t("web.errors.bad_form") in await response.text()
    for path in (f"/retention/{'9' * 30}/keep", "/retention/abc/keep"):
        response = await client.post(path, data={"csrf": csrf, "months": "6", "reason": "Reden"})
        assert response.status == 400 and CATALOG.t("web.errors.bad_address") in await response.text()
    response = await client.post(
        f"/retention/{ids['foreign'][1]}/keep", data={"csrf": csrf, "months": "6", "reason": "Reden"}
    )
    assert response.status == 404
    response = await client.post(f"/retention/{consult}/keep", data={"months": "6", "reason": "Reden"})
    assert response.status == 403  # no CSRF token
    response = await client.post(
        f"/retention/{consult}/keep",
        data={"csrf": csrf, "months": "6", "reason": "Reden"},
        headers={"Origin": "https://elders.example"},
    )
    assert response.status == 403
    assert not [r for r in audit_rows(app) if r["event"] == "retention_keep"]


async def test_erase_now_needs_an_admin_and_a_confirmation(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    ids = await web_world(app, clock)
    consult, patient_id = ids["due"][1], ids["due"][0]
    csrf = await log_in(client, clock)
    assert (await client.get(f"/retention/{consult}/erase")).status == 403
    response = await client.post(f"/retention/{consult}/erase", data={"csrf": csrf, "confirm": "yes"})
    assert response.status == 403 and CATALOG.t("web.errors.admin_only") in await response.text()
    assert await status_of(app, patient_id) == PatientStatus.INVITED
    await client.post("/logout", data={"csrf": csrf})
    csrf = await log_in(client, clock, "beheer")
    assert f'href="/retention/{consult}/erase"' in await (await client.get("/retention")).text()
    page = await (await client.get(f"/retention/{consult}/erase")).text()
    assert f"#{consult}" in page and 'name="confirm" value="yes"' in page
    # Without the confirmation nothing goes; a patient not on the list is refused.
    response = await client.post(f"/retention/{consult}/erase", data={"csrf": csrf})
    assert response.status == 400 and await status_of(app, patient_id) == PatientStatus.INVITED
    young = ids["young"][1]
    response = await client.post(f"/retention/{young}/erase", data={"csrf": csrf, "confirm": "yes"})
    assert response.status == 409 and CATALOG.t("web.retention.not_listed") in await response.text()
    response = await client.post(
        f"/retention/{consult}/erase", data={"csrf": csrf, "confirm": "yes"}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/retention?gewist=1"
    assert await status_of(app, patient_id) == PatientStatus.ERASED
    rows = [r for r in audit_rows(app) if r["event"] == "retention_erase"]
    assert len(rows) == 1 and rows[0]["patient_id"] == patient_id and rows[0]["user_name"] == "Bert (beheer)"
    # The erased consult is gone from the list, and its agenda says it is erased.
    assert f'href="/consult/{consult}"' not in await (await client.get("/retention")).text()
    assert (await client.get(f"/consult/{consult}")).status == 410


async def test_the_page_says_when_retention_is_off(tmp_path: Path, clock: FrozenClock) -> None:
    settings = Settings(
        _env_file=None, database_path=tmp_path / "off.sqlite3", voice_cache_dir=tmp_path / "v"
    )
    app = await build_app(settings, clock)
    try:
        practice = await app.repo.practices.add("De Linde", clock.now())
        await patient(app, clock, practice, months_ago(40))
        await make_account(app, clock, practice, "anna", "Anna (POH)")
        async with TestClient(TestServer(WebApp(app).routes())) as client:
            await log_in(client, clock)
            page = await (await client.get("/retention")).text()
        assert CATALOG.t("web.retention.off") in page and "/keep" not in page
    finally:
        await app.close()
