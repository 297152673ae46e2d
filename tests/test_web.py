"""The clinician web app over HTTP (aiohttp test server, real SQLite): every route, log-in with a
password and TOTP, lockout, CSRF, another practice, admin only, exports (SOEP, PDF, FHIR R4B
validated), the plan editor, session expiry, security headers and the append-only audit log."""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pyotp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.clock import FrozenClock
from bot.web import exports
from bot.web.auth import WebAuth
from bot.web.server import WebApp

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SECRETS: dict[str, str] = {}  # username -> the authenticator key seed() enrolled


async def make_account(
    app: App, clock: FrozenClock, practice: int, username: str, name: str, role: str = "poh"
) -> int:
    """An account as its holder makes it: the enrolment link, then PASSWORD and an app (the code of
    30 s ago, so a log-in now may use the current one)."""
    auth = WebAuth(app.repo.web, clock)
    account, token = await auth.create_account(practice, username, name, role=role)
    enrolment = await auth.enrolment(token)
    assert enrolment is not None
    code = pyotp.TOTP(enrolment.secret).at(clock.now() - timedelta(seconds=30))
    assert await auth.enrol(token, PASSWORD, PASSWORD, code) == "ok"
    SECRETS[username] = enrolment.secret
    return account


async def seed(app: App, clock: FrozenClock) -> dict[str, Any]:
    """Practice A with a completed intake and an earlier one, practice B, three web accounts."""
    zone = app.settings.zone
    practice = await app.repo.practices.add("De Linde", clock.now())
    other = await app.repo.practices.add("De Eik", clock.now())
    earlier = await app.invites.invite_patient(
        practice, datetime(2026, 6, 1, 10, 0, tzinfo=zone), name="J. de Vries", read_aloud=False, simple=False
    )
    consult = await app.invites.invite_patient(
        practice, datetime(2026, 11, 23, 14, 30, tzinfo=zone), patient_id=earlier.patient_id
    )
    for cid, scores in ((earlier.consult_id, 6), (consult.consult_id, 3)):
        for dim in app.catalog.dimensions:
            await app.repo.answers.save(
                cid, f"{dim.id}.score", scores if dim.id == "lichaamsfuncties" else 8, clock.now()
            )
            await app.repo.answers.save(cid, f"{dim.id}.talk", dim.id == "meedoen", clock.now())
        await app.repo.consults.set_status(cid, "ready", clock.now())
    await app.repo.answers.save(consult.consult_id, "what_matters", "Mijn kleinkinderen", clock.now())
    await app.repo.answers.save(consult.consult_id, "lichaamsfuncties.hard", ["pijn"], clock.now())
    await app.repo.answers.save(
        consult.consult_id, "priorities", [{"id": "w:0", "label": "mijn rug"}], clock.now()
    )
    foreign = await app.invites.invite_patient(other, datetime(2026, 11, 24, 9, 0, tzinfo=zone))
    await make_account(app, clock, practice, "anna", "Anna (POH)")
    await make_account(app, clock, practice, "beheer", "Bert (beheer)", "admin")
    await make_account(app, clock, other, "eik", "Eva (POH De Eik)")
    return {"consult": consult.consult_id, "patient": consult.patient_id, "foreign": foreign.consult_id}


@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(WebApp(app).routes())) as test_client:
        yield test_client


async def csrf_of(client: TestClient, path: str) -> str:
    response = await client.get(path)
    match = CSRF.search(await response.text())
    assert match, path
    return match[1]


async def log_in(client: TestClient, clock: FrozenClock, username: str = "anna") -> str:
    """Password, then the code from the app seed() linked; returns the session's CSRF token."""
    token = await csrf_of(client, "/login")
    response = await client.post(
        "/login", data={"csrf": token, "username": username, "password": PASSWORD}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/login/totp"
    page = await (await client.get("/login/totp")).text()
    assert 'id="totp-secret"' not in page  # a log-in never links an app (that is the enrolment link)
    session_csrf = CSRF.search(page)
    assert session_csrf
    code = pyotp.TOTP(SECRETS[username]).at(clock.now())
    response = await client.post(
        "/login/totp", data={"csrf": session_csrf[1], "code": code}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/"
    return await csrf_of(client, "/")  # the session's tokens are new after the code


def audit_events(app: App) -> list[tuple[str, Any]]:
    db = sqlite3.connect(app.settings.database_path)
    return [(r[0], r[1]) for r in db.execute("SELECT event, patient_id FROM audit_log ORDER BY id")]


async def test_everything_needs_a_log_in(app: App, clock: FrozenClock, client: TestClient) -> None:
    await seed(app, clock)
    paths = ("/", "/consult/1", "/consult/1/fhir.json", "/consult/1/agenda.pdf", "/consult/1/soep.txt")
    paths += ("/consult/1/timeline", "/admin/audit", "/admin/accounts", "/population", "/invite")
    for path in paths:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/login", path
    response = await client.get("/login")
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert response.headers["X-Frame-Options"] == "DENY"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_log_in_agenda_chart_and_audit(app: App, clock: FrozenClock, client: TestClient) -> None:
    data = await seed(app, clock)
    await log_in(client, clock)
    listing = await (await client.get("/")).text()
    assert f'href="/consult/{data["consult"]}"' in listing and f'/consult/{data["foreign"]}"' not in listing
    page = await (await client.get(f"/consult/{data['consult']}")).text()
    assert 'class="spider-web"' in page and 'class="now"' in page and 'class="before"' in page
    assert "Meedoen (8) 💬" in page  # wants to talk: highlighted
    assert "mijn rug" in page and "Mijn kleinkinderen" in page
    assert "O: Door de patiënt zelf gegeven cijfers" in page
    assert ("view_agenda", data["patient"]) in audit_events(app)
    assert ("login", None) in audit_events(app)


async def test_wrong_password_and_lockout(app: App, clock: FrozenClock, client: TestClient) -> None:
    await seed(app, clock)
    wrong = html.escape(app.catalog.t("web.login.wrong"), quote=False)
    for _ in range(5):
        token = await csrf_of(client, "/login")
        response = await client.post("/login", data={"csrf": token, "username": "anna", "password": "nope"})
        assert response.status == 401
    assert wrong in await response.text()
    token = await csrf_of(client, "/login")
    response = await client.post("/login", data={"csrf": token, "username": "anna", "password": PASSWORD})
    assert response.status == 401 and wrong in await response.text()  # even the right one now
    token = await csrf_of(client, "/login")
    response = await client.post("/login", data={"csrf": token, "username": "nobody", "password": PASSWORD})
    assert wrong in await response.text()  # unknown, locked and wrong look the same
    clock.advance(timedelta(minutes=2))
    await log_in(client, clock)  # the lock is over


async def test_wrong_and_reused_totp_codes(app: App, clock: FrozenClock, client: TestClient) -> None:
    await seed(app, clock)
    token = await csrf_of(client, "/login")
    await client.post("/login", data={"csrf": token, "username": "anna", "password": PASSWORD})
    page = await (await client.get("/login/totp")).text()
    session_csrf = CSRF.search(page)
    assert session_csrf
    response = await client.post("/login/totp", data={"csrf": session_csrf[1], "code": "000000"})
    assert response.status == 401 and "klopt niet" in await response.text()
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login/totp"
    code = pyotp.TOTP(SECRETS["anna"]).at(clock.now())
    assert (await client.post("/login/totp", data={"csrf": session_csrf[1], "code": code})).status == 200
    # A second log-in may not use the same code again.
    async with TestClient(TestServer(WebApp(app).routes())) as second:
        token = await csrf_of(second, "/login")
        await second.post("/login", data={"csrf": token, "username": "anna", "password": PASSWORD})
        page = await (await second.get("/login/totp")).text()
        csrf2 = CSRF.search(page)
        assert csrf2
        response = await second.post("/login/totp", data={"csrf": csrf2[1], "code": code})
        assert response.status == 401


async def test_csrf_other_practice_admin_only(app: App, clock: FrozenClock, client: TestClient) -> None:
    data = await seed(app, clock)
    csrf = await log_in(client, clock)
    response = await client.post(f"/consult/{data['consult']}/plan/goal", data={"text": "Fietsen"})
    assert response.status == 403 and "verlopen" in await response.text()
    response = await client.post(
        f"/consult/{data['consult']}/plan/goal", data={"text": "Fietsen", "csrf": "forged"}
    )
    assert response.status == 403
    for path in (f"/consult/{data['foreign']}", f"/consult/{data['foreign']}/fhir.json"):
        response = await client.get(path)
        assert response.status == 404 and "hoort niet bij uw praktijk" in await response.text(), path
    huge = "9" * 30  # beyond SQLite's integers: a 400, not a 500 (tests/test_web_security.py)
    for path in ("/consult/abc", f"/consult/{huge}"):
        response = await client.get(path)
        assert response.status == 400 and "Dit adres klopt niet" in await response.text(), path
    response = await client.post(
        f"/consult/{data['foreign']}/plan/goal", data={"text": "x", "csrf": csrf}, allow_redirects=False
    )
    assert response.status == 404
    assert (await client.get("/admin/audit")).status == 403
    async with TestClient(TestServer(WebApp(app).routes())) as admin:
        await log_in(admin, clock, "beheer")
        page = await (await admin.get("/admin/audit")).text()
        assert "view_agenda" not in page or "Anna (POH)" in page
        assert "login" in page and "Logboek" in page


async def test_exports_soep_pdf_fhir(app: App, clock: FrozenClock, client: TestClient) -> None:
    data = await seed(app, clock)
    await log_in(client, clock)
    consult = data["consult"]
    soep = await (await client.get(f"/consult/{consult}/soep.txt")).text()
    lines = soep.splitlines()
    assert lines[0].startswith("S: Wil vooral bespreken: mijn rug.") and '"Mijn kleinkinderen"' in lines[0]
    assert any(line.startswith("O: ") and "patiëntgerapporteerd" in line for line in lines)
    assert "E:" in lines and any(line.startswith("P: Nog geen doelen") for line in lines)
    response = await client.get(f"/consult/{consult}/agenda.pdf")
    assert response.content_type == "application/pdf" and (await response.read()).startswith(b"%PDF")
    response = await client.get(f"/consult/{consult}/fhir.json")
    bundle = json.loads(await response.text())
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[:2] == ["Questionnaire", "QuestionnaireResponse"]
    q, qr = (e["resource"] for e in bundle["entry"][:2])
    assert exports.check_response(q, qr) == []
    scores = [i for i in qr["item"] if i["linkId"] == "lichaamsfuncties.score"]
    assert scores[0]["answer"] == [{"valueInteger": 3}]
    events = [e for e, _ in audit_events(app)]
    assert {"export_soep", "export_pdf", "export_fhir"} <= set(events)


async def test_plan_editor_and_fhir_plan(app: App, clock: FrozenClock, client: TestClient) -> None:
    data = await seed(app, clock)
    csrf = await log_in(client, clock)
    consult = data["consult"]
    response = await client.post(
        f"/consult/{consult}/plan/goal",
        data={"csrf": csrf, "text": "Weer fietsen naar de markt", "follow_up": "2027-01-15"},
        allow_redirects=False,
    )
    assert response.status == 303
    goal = (await app.plans.goals(data["patient"]))[0].id
    form = [
        ("csrf", csrf),
        ("goal", str(goal)),
        ("what", "Tien minuten fietsen"),
        ("schedule", "weekdays"),
        ("days", "0"),
        ("days", "3"),
        ("at", "10:30"),
        ("measure", "steps"),
    ]
    response = await client.post(f"/consult/{consult}/plan/action", data=form, allow_redirects=False)
    assert response.status == 303 and "probleem" not in response.headers["Location"]
    action = (await app.plans.goals(data["patient"]))[0].actions[0]
    assert action.schedule.weekdays == {0, 3} and action.measurement == "steps"
    page = await (await client.get(f"/consult/{consult}")).text()
    assert "elke maandag en donderdag om 10:30" in page
    measured = [("csrf", csrf), ("goal", str(goal)), ("what", "Bloeddruk meten"), ("at", "08:00")]
    measured += [("measure", "blood_pressure"), ("limit_above", "150/95")]
    response = await client.post(f"/consult/{consult}/plan/action", data=measured, allow_redirects=False)
    assert "probleem" not in response.headers["Location"]
    limited = [
        a for a in (await app.plans.goals(data["patient"]))[0].actions if a.measurement == "blood_pressure"
    ]
    assert limited[0].limits == {"above": [150, 95]}
    assert "signaal boven 150/95" in await (await client.get(f"/consult/{consult}")).text()
    nonsense = [*measured[:-1], ("limit_above", "hoog")]
    response = await client.post(f"/consult/{consult}/plan/action", data=nonsense, allow_redirects=False)
    assert "probleem=actie" in response.headers["Location"]
    await app.plans.end_action(limited[0].id)
    bad = [("csrf", csrf), ("goal", str(goal)), ("what", "x"), ("schedule", "weekdays"), ("at", "10:30")]
    response = await client.post(f"/consult/{consult}/plan/action", data=bad, allow_redirects=False)
    assert "probleem=actie" in response.headers["Location"]  # weekdays without a day: refused kindly
    assert "reden=schedule_days" in response.headers["Location"]
    page = await (await client.get(response.headers["Location"])).text()
    assert html.escape(app.catalog.t("bad.schedule_days"), quote=False) in page  # what to change
    late = [
        *bad[:-2],
        ("schedule", "daily"),
        ("at", "10:30:00"),
        ("start", "2027-02-01"),
        ("until", "2027-01-01"),
    ]
    response = await client.post(f"/consult/{consult}/plan/action", data=late, allow_redirects=False)
    assert "reden=schedule_end" in response.headers["Location"]  # seconds are fine; the end is not
    forged = await client.get(f"/consult/{consult}?probleem=actie&reden=<script>")
    assert "<script>" not in await forged.text()
    fhir = json.loads(await (await client.get(f"/consult/{consult}/fhir.json")).text())
    kinds = {e["resource"]["resourceType"] for e in fhir["entry"]}
    assert {"Goal", "CarePlan", "CommunicationRequest"} <= kinds
    response = await client.post(
        f"/consult/{consult}/plan/action/{action.id}/end", data={"csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303 and not (await app.plans.goals(data["patient"]))[0].actions
    assert [e for e, _ in audit_events(app)].count("change_plan") == 4


async def test_session_expiry_and_log_out(app: App, clock: FrozenClock, client: TestClient) -> None:
    await seed(app, clock)
    csrf = await log_in(client, clock)
    assert (await client.get("/", allow_redirects=False)).status == 200
    clock.advance(timedelta(minutes=31))
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login"
    csrf = await log_in(client, clock)
    response = await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login"


async def test_the_audit_log_is_append_only(app: App, clock: FrozenClock, client: TestClient) -> None:
    await seed(app, clock)
    await log_in(client, clock)
    db = sqlite3.connect(app.settings.database_path)
    for sql in ("UPDATE audit_log SET user_name = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)


async def test_population_view_never_shows_fewer_than_five(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    await seed(app, clock)
    await log_in(client, clock)
    page = await (await client.get("/population")).text()
    assert "&lt; 5" in page and "Te weinig" in page and ">1<" not in page
    practice = 1
    for n in range(6):
        invite = await app.invites.invite_patient(practice, clock.now() + timedelta(days=2 + n))
        for dim in app.catalog.dimensions:
            await app.repo.answers.save(invite.consult_id, f"{dim.id}.score", 2 if n < 5 else 9, clock.now())
        await app.repo.answers.save(
            invite.consult_id, "lichaamsfuncties.hard", ["pijn", "slapen"], clock.now()
        )
        await app.repo.consults.set_status(invite.consult_id, "ready", clock.now())
    page = await (await client.get("/population")).text()
    assert "Pijn: 7" in page and "Slapen: 6" in page  # the seeded patient named Pijn too
    row = re.search(r"<th scope=\"row\">Zingeving</th>(.*?)</tr>", page)
    assert row and re.findall(r"<td>([^<]*)</td>", row[1]) == ["5", "&lt; 5", "&lt; 5"]
    assert ("view_population", None) in audit_events(app)


async def test_timeline_invite_accounts_and_sociale_kaart(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    data = await seed(app, clock)
    csrf = await log_in(client, clock)
    page = await (await client.get(f"/consult/{data['consult']}")).text()
    assert "Buurtsportcoach" in page and "Sociale kaart" in page  # matches the theme Pijn
    timeline = await (await client.get(f"/consult/{data['consult']}/timeline")).text()
    assert timeline.count("Gesprek #") == 2
    assert (await client.get(f"/consult/{data['foreign']}/timeline")).status == 404
    response = await client.post(
        "/invite",
        data={"csrf": csrf, "date": "2026-12-03", "time": "10:15", "simple": "yes", "read_aloud": "ask"},
    )
    printable = await response.text()
    assert response.status == 200 and "<svg" in printable and "t.me/" in printable
    assert "donderdag 3 december om 10:15" in printable
    bad = await client.post("/invite", data={"csrf": csrf, "date": "morgen", "time": "10:15"})
    assert bad.status == 400
    assert (await client.get("/admin/accounts")).status == 403
    async with TestClient(TestServer(WebApp(app).routes())) as admin:
        admin_csrf = await log_in(admin, clock, "beheer")
        page = await (
            await admin.post(
                "/admin/accounts",
                data={"csrf": admin_csrf, "username": "nina", "name": "Nina (POH)", "role": "poh"},
            )
        ).text()
        assert 'id="enrol-link"' in page and "nina" in page  # a link for Nina, no password
    assert {"create_invite", "create_account"} <= {e for e, _ in audit_events(app)}


async def test_telegram_agenda_links_to_the_web_page(app: App, clock: FrozenClock) -> None:
    data = await seed(app, clock)
    full = "\n".join(m.text for m in await app.agenda.telegram_messages(data["consult"]))
    assert "Levensgebieden" in full and "https://" not in full
    app.agenda.web_base_url = "https://poh.example.nl/"
    short = "\n".join(m.text for m in await app.agenda.telegram_messages(data["consult"]))
    assert f"https://poh.example.nl/consult/{data['consult']}" in short
    assert "In het kort" in short and "Levensgebieden" not in short


async def test_clinician_add_and_the_web_command(tmp_path: Any) -> None:
    """The real CLI: an account with an enrolment link (never a password), then `python -m bot web`
    answering HTTP, with LOG_LEVEL honoured and an access log without tokens."""
    import asyncio
    import os
    import socket
    import sys

    import aiohttp

    from tests.conftest import run_cli

    env = {**os.environ, "DATABASE_PATH": str(tmp_path / "w.sqlite3"), "LOG_LEVEL": "INFO"}
    code, _, _ = await run_cli("practice", "add", "De Linde", cwd=tmp_path, env=env)
    assert code == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env["WEB_BASE_URL"] = f"http://127.0.0.1:{port}"
    args = ("clinician", "add", "--practice", "1", "--username", "anna", "--name", "Anna")
    code, _, _ = await run_cli(*args, "--password-stdin", cwd=tmp_path, env=env, stdin=f"{PASSWORD}\n")
    assert code == 2  # nobody hands the CLI a password any more
    code, out, _ = await run_cli(*args, cwd=tmp_path, env=env)
    link = re.search(rf"http://127\.0\.0\.1:{port}/enrol/([A-Za-z0-9_-]+)", out)
    assert code == 0 and "web account 1 (anna)" in out and link, out
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "web",
        "--port",
        str(port),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/login") as response:
                        assert response.status == 200 and "Inloggen" in await response.text()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("the web app did not start")
            async with http.get(link[0]) as response:
                assert response.status == 200 and "Anna" in await response.text()
            async with http.get(f"http://127.0.0.1:{port}/favicon.ico") as response:
                assert response.status == 204  # the line of the request before is written by now
    finally:
        proc.terminate()
        _, err = await proc.communicate()
    logged = err.decode()
    assert "GET /login 200" in logged and "GET /enrol/... 200" in logged  # LOG_LEVEL=INFO honoured
    assert link[1] not in logged


def test_spider_web_and_response_checks_unit() -> None:
    from bot.web.charts import Axis, spider_web

    svg = spider_web([Axis(f"D<{i}>", i, None, i == 2) for i in range(6)], "T & T", "nu", "toen")
    assert svg.count("<text") == 6 and "D&lt;2&gt; (2) 💬" in svg and 'class="before"' not in svg
    q = {
        "item": [
            {"linkId": "a", "type": "integer", "required": True},
            {"linkId": "b", "type": "text", "required": False},
        ]
    }
    good = {"status": "completed", "item": [{"linkId": "a", "answer": [{"valueInteger": 3}]}]}
    assert exports.check_response(q, good) == []
    bad = {
        "status": "completed",
        "item": [{"linkId": "b", "answer": [{"valueInteger": 3}]}, {"linkId": "x", "answer": []}],
    }
    assert exports.check_response(q, bad) == [
        "b: answer type does not match text",
        "unknown linkId x",
        "required a not answered",
    ]


async def test_many_failures_from_one_address_are_slowed_down(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    await seed(app, clock)
    for i in range(20):  # different usernames: the per-account lockout alone would not stop this
        token = await csrf_of(client, "/login")
        response = await client.post("/login", data={"csrf": token, "username": f"u{i}", "password": "x"})
        assert response.status == 401
    token = await csrf_of(client, "/login")
    response = await client.post("/login", data={"csrf": token, "username": "anna", "password": PASSWORD})
    assert response.status == 429 and "Te veel mislukte pogingen" in await response.text()
    clock.advance(timedelta(minutes=16))
    await log_in(client, clock)
