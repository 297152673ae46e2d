"""The web app in real headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
a new POH opens her enrolment link, sets her own password and links an authenticator app, logs in
with password and TOTP, opens the consult list and an agenda, checks the spider web is drawn, edits
the plan (every form passes the Origin check), copies the SOEP text, downloads the PDF and the FHIR
JSON, and logs out everywhere. Screenshots are saved in ``test-artifacts/browser/`` (not in git)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pyotp
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from bot.app import App
from bot.clock import FrozenClock
from bot.web.auth import WebAuth
from bot.web.server import serve
from tests.test_web import seed

NEW_PASSWORD = "my own long pass phrase"

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"
T = TypeVar("T")


def chrome(profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    # A click on a submit button returns before the next page is there: look for an element for up
    # to 10 s (a loaded CI machine took longer than no wait at all once).
    driver.implicitly_wait(10)
    return driver


async def run(work: Callable[[], T]) -> T:
    """Selenium blocks; the web server runs on this event loop, so drive the browser in a thread."""
    return await asyncio.to_thread(work)


async def test_a_poh_prepares_a_consult_in_chromium(app: App, clock: FrozenClock, tmp_path: Path) -> None:
    data = await seed(app, clock)
    _, token = await WebAuth(app.repo.web, clock).create_account(1, "nina", "Nina (POH)")
    runner = await serve(app, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver = await run(lambda: chrome(tmp_path / "profile"))

    def shot(name: str) -> None:
        driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    def find(css: str) -> Any:
        return driver.find_element(By.CSS_SELECTOR, css)

    try:

        def enrolment() -> tuple[str, str]:
            driver.get(f"{base}/enrol/{token}")
            assert find(".qr svg")
            secret = str(find("#totp-secret").text)
            find("#password").send_keys(NEW_PASSWORD)
            find("#repeat").send_keys(NEW_PASSWORD)
            find("#code").send_keys(pyotp.TOTP(secret).at(clock.now()))
            shot("1-enrolment")
            find("form[action^='/enrol/'] button").click()
            return secret, str(find("p[role=status]").text)

        secret, notice = await run(enrolment)
        assert "klaar" in notice
        clock.advance(timedelta(seconds=30))  # a code works once: the log-in takes the next one

        def password_step() -> None:
            find("#username").send_keys("nina")
            find("#password").send_keys(NEW_PASSWORD)
            shot("2-login")
            find("form button[type=submit]").click()
            assert find("#code")
            assert not driver.find_elements(By.CSS_SELECTOR, "#totp-secret")  # no app linked here

        await run(password_step)

        def second_factor() -> str:
            find("#code").send_keys(pyotp.TOTP(secret).at(clock.now()))
            find("form[action='/login/totp'] button").click()
            shot("3-consults")
            return str(driver.page_source)

        listing = await run(second_factor)
        assert f"#{data['consult']}" in listing

        def agenda() -> tuple[int, str]:
            driver.find_element(By.LINK_TEXT, f"#{data['consult']}").click()
            polygon = find("svg.spider-web polygon.now")
            shot("4-agenda")
            return len(str(polygon.get_attribute("points")).split()), str(find("h1").text)

        points, title = await run(agenda)
        assert points == 6 and f"#{data['consult']}" in title

        def edit_plan() -> str:
            find("#goal-text").send_keys("Weer fietsen naar de markt")
            find("form[action$='/plan/goal'] button").click()
            find("#action-what").send_keys("Tien minuten fietsen")
            find("#action-at").send_keys("1030")
            find("form[action$='/plan/action'] button").click()
            shot("5-plan")
            return str(find("#plan").text)

        plan = await run(edit_plan)
        assert "Weer fietsen naar de markt" in plan and "Tien minuten fietsen" in plan

        def copy_soep() -> tuple[str, str]:
            button = find("button.copy")
            driver.execute_script("arguments[0].scrollIntoView()", button)
            button.click()
            shot("6-soep-copied")
            return str(button.text), str(find("#soep-text").get_attribute("value"))

        label, soep = await run(copy_soep)
        assert label == "Gekopieerd" and soep.startswith("S: ") and "P: Doel: Weer fietsen" in soep

        fetch = (
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => r.arrayBuffer().then(b => done([r.status, "
            "r.headers.get('content-type'), String.fromCharCode(...new Uint8Array(b).slice(0, 40))])));"
        )

        def download(path: str) -> list[Any]:
            return list(driver.execute_async_script(fetch, f"{base}{path}"))

        status, kind, head = await run(lambda: download(f"/consult/{data['consult']}/agenda.pdf"))
        assert status == 200 and kind == "application/pdf" and head.startswith("%PDF")
        status, kind, head = await run(lambda: download(f"/consult/{data['consult']}/fhir.json"))
        assert status == 200 and "fhir+json" in kind and '"resourceType": "Bundle"' in head

        def log_out_everywhere() -> str:
            driver.get(f"{base}/account")
            find("form[action='/logout/all'] button").click()
            shot("7-logged-out")
            driver.get(f"{base}/")
            return str(driver.current_url)

        assert (await run(log_out_everywhere)).endswith("/login")
        print(f"\nscreenshots: {ARTIFACTS}")
    finally:
        await run(driver.quit)
        await runner.cleanup()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
