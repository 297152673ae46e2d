"""Hardening of the clinician web app (issue 13): the real client address behind a trusted reverse
proxy, a per-account lock with a backoff that a log-in resets, one answer for unknown, locked and
wrong, failed log-ins in the audit log, every response with the security headers (4xx and 5xx too),
400 for bad encodings and ids, an Origin check on every state-changing request, HSTS behind https,
and an access log without patient data."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App, build_app
from bot.clock import FrozenClock
from bot.config import Settings
from bot.web.server import WebApp
from tests.test_web import CSRF, PASSWORD, csrf_of, log_in, seed

HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Cache-Control")


def problem(page: str) -> str:
    found = re.search(r'<p class="problem" role="alert">([^<]*)</p>', page)
    assert found, page[:500]
    return found[1]


async def attempt(
    client: TestClient, username: str, password: str, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    token = await csrf_of(client, "/login")
    response = await client.post(
        "/login",
        data={"csrf": token, "username": username, "password": password},
        headers=headers or {},
        allow_redirects=False,
    )
    return response.status, await response.text()


def rows(app: App, sql: str = "SELECT * FROM audit_log ORDER BY id") -> list[sqlite3.Row]:
    db = sqlite3.connect(app.settings.database_path)
    db.row_factory = sqlite3.Row
    return list(db.execute(sql))


@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(WebApp(app).routes())) as test_client:
        yield test_client


async def app_with(tmp_path: Path, clock: FrozenClock, **settings: Any) -> App:
    return await build_app(
        Settings(
            _env_file=None,
            database_path=tmp_path / "proxied.sqlite3",
            voice_cache_dir=tmp_path / "voice-cache",
            **settings,
        ),
        clock,
    )


# -- A: the real client address, the per-account lock ---------------------------------------------
async def test_behind_a_trusted_proxy_one_address_cannot_lock_out_everyone(
    tmp_path: Path, clock: FrozenClock
) -> None:
    app = await app_with(tmp_path, clock, trusted_proxies="127.0.0.1, 10.0.0.0/8")
    try:
        await seed(app, clock)
        async with TestClient(TestServer(WebApp(app).routes())) as client:
            attacker = {"X-Forwarded-For": "203.0.113.5"}
            for i in range(20):
                status, _ = await attempt(client, f"u{i}", "x", attacker)
                assert status == 401
            assert (await attempt(client, "anna", PASSWORD, attacker))[0] == 429  # the attacker is slowed
            # Anna's own address behind the same proxy (and one more proxy hop, trusted too).
            colleague = {"X-Forwarded-For": "198.51.100.7, 10.1.2.3"}
            assert (await attempt(client, "anna", PASSWORD, colleague))[0] == 303
            # A forged left-most entry does not help the attacker: the right-most untrusted one counts.
            forged = {"X-Forwarded-For": "198.51.100.7, 203.0.113.5"}
            assert (await attempt(client, "beheer", PASSWORD, forged))[0] == 429
        addresses = {r["client_address"] for r in rows(app) if r["event"] == "login_failed"}
        assert addresses == {"203.0.113.5"}  # the audit log names the real client, not the proxy
    finally:
        await app.close()


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    await seed(app, clock)
    for i in range(20):  # a new made-up address each time: without TRUSTED_PROXIES it does not count
        status, _ = await attempt(client, f"u{i}", "x", {"X-Forwarded-For": f"203.0.113.{i}"})
        assert status == 401
    assert (await attempt(client, "anna", PASSWORD, {"X-Forwarded-For": "198.51.100.1"}))[0] == 429


def test_client_address_takes_the_right_most_untrusted_hop() -> None:
    from ipaddress import ip_network

    from bot.web.server import client_address

    trusted = (ip_network("10.0.0.0/8"), ip_network("::1/128"))
    assert client_address("10.0.0.1", "1.2.3.4, 5.6.7.8, 10.0.0.2", trusted) == "5.6.7.8"
    assert client_address("10.0.0.1", "10.9.9.9, 10.0.0.2", trusted) == "10.9.9.9"  # all trusted
    assert client_address("10.0.0.1", None, trusted) == "10.0.0.1"
    assert client_address("192.0.2.1", "1.2.3.4", trusted) == "192.0.2.1"  # not from our proxy
    assert client_address("::1", "2001:db8::5", trusted) == "2001:db8::5"
    assert client_address("10.0.0.1", "nonsense, 10.0.0.2", trusted) == "10.0.0.2"  # garbage stops
    assert client_address("10.0.0.1", "", trusted) == "10.0.0.1"
    with pytest.raises(ValueError):
        Settings(_env_file=None, trusted_proxies="10.0.0.0/8, not-an-address")
    assert Settings(_env_file=None, trusted_proxies=" 10.0.0.0/8,192.0.2.1 ").trusted_networks == (
        ip_network("10.0.0.0/8"),
        ip_network("192.0.2.1/32"),
    )


async def test_unknown_locked_and_wrong_get_one_answer(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    await seed(app, clock)
    wrong = await attempt(client, "anna", "nope")
    unknown = await attempt(client, "nobody", "nope")
    for _ in range(4):
        await attempt(client, "anna", "nope")
    locked = await attempt(client, "anna", PASSWORD)  # locked: even the right password
    assert wrong[0] == unknown[0] == locked[0] == 401
    assert problem(wrong[1]) == problem(unknown[1]) == problem(locked[1])


async def test_every_attempt_costs_one_argon2_check(
    app: App, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown, locked and wrong take the same work, so the time does not tell them apart."""
    await seed(app, clock)
    web_app = WebApp(app)
    calls: list[str] = []
    real = web_app.auth.hasher

    class Counting:
        def hash(self, password: str) -> str:
            calls.append("hash")
            return real.hash(password)

        def verify(self, password_hash: str, password: str) -> bool:
            calls.append("verify")
            return real.verify(password_hash, password)

    monkeypatch.setattr(web_app.auth, "hasher", Counting())
    async with TestClient(TestServer(web_app.routes())) as client:
        for username in ("anna", "anna", "anna", "anna", "anna", "anna", "nobody"):
            calls.clear()
            await attempt(client, username, "nope")
            assert calls == ["verify"], username


async def test_the_lock_backs_off_and_a_log_in_resets_it(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    await seed(app, clock)
    for _ in range(5):
        await attempt(client, "anna", "nope")
    assert (await attempt(client, "anna", PASSWORD))[0] == 401  # locked for a minute
    clock.advance(timedelta(seconds=61))
    assert (await attempt(client, "anna", "typo"))[0] == 401
    assert (await attempt(client, "anna", PASSWORD))[0] == 303  # one typo after the lock: no new lock
    for _ in range(4):
        await attempt(client, "anna", "nope")  # 10 wrong in a row now: locked for two minutes
    clock.advance(timedelta(seconds=61))
    assert (await attempt(client, "anna", PASSWORD))[0] == 401
    clock.advance(timedelta(seconds=60))
    await log_in(client, clock)  # password and code: the counter starts again
    for _ in range(4):
        await attempt(client, "anna", "nope")
    assert (await attempt(client, "anna", PASSWORD))[0] == 303
    db = sqlite3.connect(app.settings.database_path)
    assert db.execute("SELECT locked_until FROM web_accounts WHERE username = 'anna'").fetchone() == (None,)


# -- B: failed log-ins, locks, throttles and log-outs in the audit log ---------------------------
async def test_failed_log_ins_locks_throttles_and_log_outs_are_audited(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    await seed(app, clock)
    for _ in range(5):
        await attempt(client, "anna", "secret-typo-1")
    await attempt(client, "nobody-typed-this", "secret-typo-2")
    for i in range(14):
        await attempt(client, f"x{i}", "secret-typo-3")
    assert (await attempt(client, "x14", "secret-typo-3"))[0] == 429  # 20 failures from here
    assert (await attempt(client, "anna", PASSWORD))[0] == 429
    assert (await attempt(client, "anna", PASSWORD))[0] == 429  # one throttle row per window
    clock.advance(timedelta(minutes=16))
    csrf = await log_in(client, clock)
    await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    audit = rows(app)
    events = [r["event"] for r in audit]
    assert events.count("login_failed") == 5 + 1 + 14
    assert events.count("account_locked") == 1 and events.count("login_throttled") == 1
    assert events[-3:] == ["login", "view_consult_list", "logout"]
    anna = [r for r in audit if r["event"] in ("login_failed", "account_locked") and r["account_id"]]
    assert len(anna) == 6 and {r["user_name"] for r in anna} == {"Anna (POH)"}
    assert {r["practice_id"] for r in anna} == {1}
    unknown = [r for r in audit if r["event"] == "login_failed" and r["account_id"] is None]
    assert {r["user_name"] for r in unknown} == {"unknown"}
    assert {r["client_address"] for r in audit} == {"127.0.0.1"}
    everything = repr([tuple(r) for r in audit])
    for secret in ("secret-typo", PASSWORD, "nobody-typed-this", "x1"):
        assert secret not in everything  # no passwords, no typed unknown usernames


async def test_a_wrong_code_is_audited(app: App, clock: FrozenClock, client: TestClient) -> None:
    await seed(app, clock)
    csrf = await log_in(client, clock)
    await client.post("/logout", data={"csrf": csrf})
    clock.advance(timedelta(seconds=30))
    token = await csrf_of(client, "/login")
    await client.post("/login", data={"csrf": token, "username": "anna", "password": PASSWORD})
    page = await (await client.get("/login/totp")).text()
    session_csrf = CSRF.search(page)
    assert session_csrf
    await client.post("/login/totp", data={"csrf": session_csrf[1], "code": "123456"})
    failed = [r for r in rows(app) if r["event"] == "login_failed"]
    assert len(failed) == 1 and failed[0]["detail"] == "code" and failed[0]["account_id"]
    assert "123456" not in repr([tuple(r) for r in rows(app)])


# -- C: headers on every response, 400 for bad input, a kind 500 -------------------------------------
async def test_bad_encodings_and_ids_are_400_with_headers(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    data = await seed(app, clock)
    token = await csrf_of(client, "/login")
    form = b"csrf=" + token.encode() + b"&username=\xff\xfe&password=x"
    response = await client.post(
        "/login", data=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 400 and "klopt niet" in problem(await response.text())
    broken = b'--x\r\nContent-Disposition: form-data; name="csrf"\r\n\r\nabc'
    response = await client.post(
        "/login", data=broken, headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert response.status == 400 and all(h in response.headers for h in HEADERS)
    response = await client.post("/login", data={"csrf": "é" * 20, "username": "anna", "password": "x"})
    assert response.status == 403  # a non-ASCII token is just a wrong token
    client.session.cookie_jar.update_cookies({"vg_pre": "ü"})
    response = await client.post("/login", data={"csrf": "ü", "username": "anna", "password": "x"})
    assert response.status in (401, 403)
    csrf = await log_in(client, clock)
    huge = "9" * 30
    for method, path in (
        ("POST", f"/consult/{data['consult']}/plan/action/{huge}/end"),
        ("POST", f"/consult/{huge}/plan/goal"),
        ("GET", f"/consult/{huge}"),
        ("GET", "/consult/abc/timeline"),
        ("GET", "/consult/-3"),
    ):
        response = await client.request(method, path, data={"csrf": csrf}, allow_redirects=False)
        assert response.status == 400, path
        assert all(h in response.headers for h in HEADERS), path
        assert "Dit adres klopt niet" in problem(await response.text()), path


async def test_every_error_carries_the_security_headers(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    await seed(app, clock)
    csrf = await log_in(client, clock)
    for method, path, status in (
        ("GET", "/no/such/page", 404),
        ("PUT", "/login", 405),
        ("GET", "/admin/accounts", 403),
        ("POST", "/invite", 403),  # no CSRF token
        ("GET", "/", 200),
        ("GET", "/static/app.css", 200),
    ):
        response = await client.request(method, path, allow_redirects=False)
        assert response.status == status, path
        assert all(h in response.headers for h in HEADERS), path
    response = await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303 and all(h in response.headers for h in HEADERS)
    big = await client.post("/invite", data={"csrf": csrf, "name": "x" * 3_000_000})
    assert big.status == 413 and all(h in big.headers for h in HEADERS)


async def test_an_unexpected_error_is_a_dutch_500_and_one_log_line(
    app: App, clock: FrozenClock, client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    data = await seed(app, clock)
    await log_in(client, clock)

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("J. de Vries heeft pijn")  # a message that may hold patient data

    monkeypatch.setattr(app.agenda, "view", broken)
    with caplog.at_level(logging.DEBUG):
        response = await client.get(f"/consult/{data['consult']}")
    assert response.status == 500 and all(h in response.headers for h in HEADERS)
    assert "Er ging iets mis" in problem(await response.text())
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") + str(r.exc_text or "") for r in caplog.records)
    assert "RuntimeError" in logged and "de Vries" not in logged and "Traceback" not in caplog.text


# -- D: the Origin check, HSTS --------------------------------------------------------------------
async def test_state_changing_requests_from_another_origin_are_refused(
    app: App, clock: FrozenClock, client: TestClient
) -> None:
    await seed(app, clock)
    here = f"http://{client.server.host}:{client.server.port}"
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Origin": f"{here}.evil.example"},
    ):
        status, page = await attempt(client, "anna", PASSWORD, headers)
        assert status == 403 and "andere website" in problem(page), headers
    assert (await attempt(client, "anna", PASSWORD, {"Origin": here}))[0] == 303
    assert (await attempt(client, "anna", PASSWORD, {"Referer": f"{here}/login"}))[0] == 303
    assert "Strict-Transport-Security" not in (await client.get("/login")).headers


async def test_behind_https_the_base_url_is_the_origin_and_hsts_is_sent(
    tmp_path: Path, clock: FrozenClock
) -> None:
    app = await app_with(tmp_path, clock, web_base_url="https://poh.example.nl/")
    try:
        await seed(app, clock)
        server = TestServer(WebApp(app).routes())
        await server.start_server()
        # The cookies are Secure now; the test server speaks plain http on 127.0.0.1.
        jar = CookieJar(unsafe=True, treat_as_secure_origin=[str(server.make_url("/"))])
        async with TestClient(server, cookie_jar=jar) as client:
            response = await client.get("/login")
            assert "Secure" in response.headers["Set-Cookie"]
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
            ok = {"Origin": "https://poh.example.nl"}
            assert (await attempt(client, "anna", PASSWORD, ok))[0] == 303
            for bad in ("http://poh.example.nl", f"http://{client.server.host}:{client.server.port}"):
                assert (await attempt(client, "anna", PASSWORD, {"Origin": bad}))[0] == 403
            missing = await client.get("/nowhere")
            assert missing.status == 404 and "Strict-Transport-Security" in missing.headers
    finally:
        await app.close()


# -- E: the access log ----------------------------------------------------------------------------
async def test_the_access_log_has_no_query_strings_or_tokens(
    app: App, clock: FrozenClock, caplog: Any
) -> None:
    import aiohttp

    from bot.web.server import serve

    await seed(app, clock)
    runner = await serve(app, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    try:
        with caplog.at_level(logging.INFO, logger="bot.web.access"):
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://{host}:{port}/consult/1?probleem=J.%20de%20Vries") as r:
                    assert r.status in (200, 303)
                async with http.get(f"http://{host}:{port}/enrol/s3cr3t-token-value") as r:
                    pass
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.web.access"]
    assert len(lines) >= 2
    assert re.fullmatch(r"GET /consult/1 303 \d+ ms", lines[0]), lines
    assert "Vries" not in caplog.text and "probleem" not in caplog.text
    assert "s3cr3t" not in caplog.text and any(line.startswith("GET /enrol/... ") for line in lines)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
