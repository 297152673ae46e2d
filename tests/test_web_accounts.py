"""Web accounts without a backdoor (issue 13): an account starts with a one-time enrolment link (72
hours, once, only its hash stored) where its holder sets their own password and links an
authenticator app; nobody else ever sees a password; changing it needs the current one and a code;
an admin reset voids the old password and app; the session token changes after each step; "log out
everywhere"."""

from __future__ import annotations

import html
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta

import pyotp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.clock import FrozenClock
from bot.web.auth import WebAuth
from bot.web.server import COOKIE, WebApp
from tests.test_web import CSRF, PASSWORD, SECRETS, audit_events, csrf_of, log_in, seed

NEW_PASSWORD = "a much longer pass phrase"
LINK = re.compile(r'id="enrol-link">(https?://[^<]+/enrol/([A-Za-z0-9_-]+))<')


@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(WebApp(app).routes())) as test_client:
        yield test_client


def t(app: App, key: str, **params: object) -> str:
    return html.escape(app.catalog.t(key, **params), quote=False)


async def enrol(
    client: TestClient,
    clock: FrozenClock,
    token: str,
    password: str = NEW_PASSWORD,
    repeat: str | None = None,
) -> tuple[int, str, str]:
    """Open the link, read the key shown, send password, repeat and a code; (status, page, secret)."""
    page = await (await client.get(f"/enrol/{token}")).text()
    shown = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    csrf = CSRF.search(page)
    assert shown and csrf and "<svg" in page, page[:400]
    form = {
        "csrf": csrf[1],
        "password": password,
        "repeat": password if repeat is None else repeat,
        "code": pyotp.TOTP(shown[1]).at(clock.now()),
    }
    response = await client.post(f"/enrol/{token}", data=form, allow_redirects=False)
    return response.status, await response.text(), shown[1]


async def password_step(client: TestClient, username: str, password: str) -> tuple[int, str]:
    token = await csrf_of(client, "/login")
    response = await client.post(
        "/login", data={"csrf": token, "username": username, "password": password}, allow_redirects=False
    )
    return response.status, await response.text()


async def test_an_admin_makes_an_account_and_its_holder_enrols(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    await seed(app, clock)
    admin_csrf = await log_in(client, clock, "beheer")
    page = await (
        await client.post(
            "/admin/accounts", data={"csrf": admin_csrf, "username": "nina", "name": "Nina (POH)"}
        )
    ).text()
    link = LINK.search(page)
    assert link and "new-password" not in page  # a link, never a password
    token = link[2]
    db = sqlite3.connect(app.settings.database_path)
    dump = "\n".join(db.iterdump())
    assert token not in dump  # only its hash is stored
    async with TestClient(TestServer(WebApp(app).routes())) as nina:
        assert (await password_step(nina, "nina", ""))[0] == 401  # no password yet: nothing to log in
        status, page, _ = await enrol(nina, clock, token, repeat="something else")
        assert status == 400 and t(app, "web.enrol.mismatch") in page
        status, page, _ = await enrol(nina, clock, token, password="short")
        assert status == 400 and t(app, "web.enrol.too_short", n=12) in page
        status, page, secret = await enrol(nina, clock, token)
        assert status == 303, page
        assert (await nina.get(f"/enrol/{token}")).status == 410  # once only
        clock.advance(timedelta(seconds=30))
        assert (await password_step(nina, "nina", NEW_PASSWORD))[0] == 303
        page = await (await nina.get("/login/totp")).text()
        assert 'id="totp-secret"' not in page  # the log-in never offers to link an app
        csrf = CSRF.search(page)
        assert csrf
        response = await nina.post(
            "/login/totp", data={"csrf": csrf[1], "code": pyotp.TOTP(secret).at(clock.now())}
        )
        assert response.status == 200 and "Gesprekken" in await response.text()
    events = [e for e, _ in audit_events(app)]
    assert {"create_account", "enrolled"} <= set(events)


async def test_an_enrolment_link_expires(app: App, clock: FrozenClock, client: TestClient) -> None:
    await seed(app, clock)
    auth = WebAuth(app.repo.web, clock)
    _, token = await auth.create_account(1, "nina", "Nina (POH)")
    clock.advance(timedelta(hours=71))
    assert (await client.get(f"/enrol/{token}")).status == 200
    clock.advance(timedelta(hours=2))
    response = await client.get(f"/enrol/{token}")
    assert response.status == 410 and t(app, "web.enrol.expired") in await response.text()
    assert (await client.get("/enrol/made-up-token")).status == 410


async def test_the_first_log_in_cannot_link_an_app(app: App, clock: FrozenClock, client: TestClient) -> None:
    """An account with a password but no linked app (made before enrolment links) cannot log in:
    whoever knows its password must not be able to link their own app."""
    await seed(app, clock)
    auth = WebAuth(app.repo.web, clock)
    await app.repo.web.add_account(
        1, "oud", "Oud account", auth.hasher.hash(PASSWORD), "poh", None, clock.now()
    )
    status, page = await password_step(client, "oud", PASSWORD)
    assert status == 401 and t(app, "web.login.not_ready") in page
    assert (await client.get("/login/totp", allow_redirects=False)).headers["Location"] == "/login"


async def test_the_session_token_changes_after_each_step(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    await seed(app, clock)

    def cookie() -> str:
        return next(c.value for c in client.session.cookie_jar if c.key == COOKIE)

    await password_step(client, "anna", PASSWORD)
    half = cookie()
    page = await (await client.get("/login/totp")).text()
    csrf = CSRF.search(page)
    assert csrf
    code = pyotp.TOTP(SECRETS["anna"]).at(clock.now())
    await client.post("/login/totp", data={"csrf": csrf[1], "code": code}, allow_redirects=False)
    full = cookie()
    assert full != half
    async with TestClient(TestServer(WebApp(app).routes())) as thief:
        thief.session.cookie_jar.update_cookies({COOKIE: half})
        assert (await thief.get("/", allow_redirects=False)).headers["Location"] == "/login"
        thief.session.cookie_jar.update_cookies({COOKIE: full})
        assert (await thief.get("/", allow_redirects=False)).status == 200


async def test_change_password_needs_the_current_one_and_a_code(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    await seed(app, clock)
    csrf = await log_in(client, clock)
    async with TestClient(TestServer(WebApp(app).routes())) as other_device:
        clock.advance(timedelta(seconds=30))
        await log_in(other_device, clock)
        page = await (await client.get("/account")).text()
        csrf = CSRF.search(page)[1]  # type: ignore[index]
        clock.advance(timedelta(seconds=30))
        code = pyotp.TOTP(SECRETS["anna"]).at(clock.now())
        form = {"csrf": csrf, "current": "not it", "code": code, "password": NEW_PASSWORD}
        response = await client.post("/account/password", data={**form, "repeat": NEW_PASSWORD})
        assert response.status == 400 and t(app, "web.account.wrong") in await response.text()
        form["current"] = PASSWORD
        response = await client.post("/account/password", data={**form, "repeat": NEW_PASSWORD})
        assert response.status == 200 and t(app, "web.account.changed") in await response.text()
        assert (await other_device.get("/", allow_redirects=False)).headers["Location"] == "/login"
        assert (await client.get("/", allow_redirects=False)).status == 200  # this one goes on
    assert (await password_step(client, "anna", PASSWORD))[0] == 401
    assert (await password_step(client, "anna", NEW_PASSWORD))[0] == 303
    assert "change_password" in [e for e, _ in audit_events(app)]


async def test_log_out_everywhere(app: App, clock: FrozenClock, client: TestClient) -> None:
    await seed(app, clock)
    await log_in(client, clock)
    async with TestClient(TestServer(WebApp(app).routes())) as phone:
        clock.advance(timedelta(seconds=30))
        phone_csrf = await log_in(phone, clock)
        response = await phone.post("/logout/all", data={"csrf": phone_csrf}, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/login"
        assert (await phone.get("/", allow_redirects=False)).headers["Location"] == "/login"
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login"
    assert "logout_everywhere" in [e for e, _ in audit_events(app)]


async def test_an_admin_resets_an_account(app: App, clock: FrozenClock, client: TestClient) -> None:
    await seed(app, clock)
    await log_in(client, clock)  # anna, working
    async with TestClient(TestServer(WebApp(app).routes())) as admin:
        admin_csrf = await log_in(admin, clock, "beheer")
        page = await (await admin.get("/admin/accounts")).text()
        assert 'action="/admin/accounts/3/reset"' not in page  # not the other practice's account
        assert (
            await admin.post("/admin/accounts/3/reset", data={"csrf": admin_csrf}, allow_redirects=False)
        ).status == 404
        response = await admin.post("/admin/accounts/1/reset", data={"csrf": admin_csrf})
        link = LINK.search(await response.text())
        assert response.status == 200 and link
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login"  # her sessions end
    clock.advance(timedelta(seconds=30))
    assert (await password_step(client, "anna", PASSWORD))[0] == 401  # the old password is void
    status, _, secret = await enrol(client, clock, link[2])
    assert status == 303 and secret != SECRETS["anna"]  # and so is the old app
    rows = sqlite3.connect(app.settings.database_path).execute(
        "SELECT event, user_name, detail FROM audit_log WHERE event = 'reset_account'"
    )
    assert list(rows) == [("reset_account", "Bert (beheer)", "account 1")]


async def test_the_cli_prints_a_link_and_never_a_password(app: App, clock: FrozenClock) -> None:
    from bot.cli import cmd_clinician_add, cmd_clinician_reset

    await seed(app, clock)
    import argparse
    import contextlib
    import io

    out = io.StringIO()
    args = argparse.Namespace(practice=1, username="nina", name="Nina", admin=False, telegram_clinician=None)
    with contextlib.redirect_stdout(out):
        assert await cmd_clinician_add(args, app.settings) == 0
        assert await cmd_clinician_reset(argparse.Namespace(username="nina"), app.settings) == 0
    printed = out.getvalue()
    links = re.findall(r"http://127\.0\.0\.1:8080/enrol/([A-Za-z0-9_-]{30,})", printed)
    assert len(links) == 2 and "first password" not in printed
    async with TestClient(TestServer(WebApp(app).routes())) as nina:
        assert (await nina.get(f"/enrol/{links[0]}")).status == 410  # the reset voided the first
        assert (await nina.get(f"/enrol/{links[1]}")).status == 200
