"""Invites in bulk in real headless Chromium: the assistant logs in, uploads the HIS list as a CSV
file, sees one bad row named (nothing invited), fixes it by pasting, and gets one printable letter
per patient with its QR code and the SMS texts. Screenshots in ``test-artifacts/browser/``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp

from bot.app import App
from bot.clock import FrozenClock
from bot.web.auth import WebAuth
from bot.web.server import serve
from tests.test_browser import ARTIFACTS, NEW_PASSWORD, By, chrome, run

GOOD = (
    "naam;datum;tijd\nJ. de Vries;2027-01-12;09:30\nA. Bakker;12-01-2027;09:45\nC. Dekker;2027-01-13;10:00\n"
)
BAD = GOOD.replace("10:00", "31:00")


async def test_an_assistant_imports_the_his_list_in_chromium(
    app: App, clock: FrozenClock, tmp_path: Path
) -> None:
    practice = await app.repo.practices.add("De Linde", clock.now())
    auth = WebAuth(app.repo.web, clock)
    _, token = await auth.create_account(practice, "sanne", "Sanne (assistent)")
    enrolment = await auth.enrolment(token)
    assert enrolment is not None
    code = pyotp.TOTP(enrolment.secret).at(clock.now() - timedelta(seconds=30))
    assert await auth.enrol(token, NEW_PASSWORD, NEW_PASSWORD, code) == "ok"
    runner = await serve(app, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    csv_file = tmp_path / "his-export.csv"
    csv_file.write_text(BAD, encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver = await run(lambda: chrome(tmp_path / "profile"))

    def find(css: str) -> Any:
        return driver.find_element(By.CSS_SELECTOR, css)

    try:

        def log_in() -> None:
            driver.get(f"{base}/login")
            find("#username").send_keys("sanne")
            find("#password").send_keys(NEW_PASSWORD)
            find("form button[type=submit]").click()
            find("#code").send_keys(pyotp.TOTP(enrolment.secret).at(clock.now()))
            find("form[action='/login/totp'] button").click()
            find("nav")

        await run(log_in)

        def upload_bad() -> str:
            driver.get(f"{base}/invite")
            driver.find_element(By.CSS_SELECTOR, "a[href='/invite/bulk']").click()
            find("#file").send_keys(str(csv_file))
            find("form[action='/invite/bulk'] button").click()
            driver.save_screenshot(str(ARTIFACTS / "bulk-1-problem.png"))
            return str(find("#bulk-problems").text)

        problems = await run(upload_bad)
        assert "Regel 4" in problems
        assert await app.repo.consults.of_practice(practice) == []

        def paste_good() -> tuple[int, int, str]:
            field = find("#list")
            field.clear()
            field.send_keys(GOOD)
            find("form[action='/invite/bulk'] button").click()
            status = str(find("#bulk-done").text)
            driver.save_screenshot(str(ARTIFACTS / "bulk-2-letters.png"))
            letters = driver.find_elements(By.CSS_SELECTOR, "section.letter .qr svg")
            texts = driver.find_elements(By.CSS_SELECTOR, "#bulk-texts textarea")
            print_link = find("a.print")
            assert print_link.is_displayed()  # app.js shows it (no inline script under the CSP)
            return len(letters), len(texts), status

        letters, texts, status = await run(paste_good)
        assert letters == 3 and texts == 3 and "3" in status
        assert len(await app.repo.consults.of_practice(practice)) == 3
    finally:
        await run(driver.quit)
        await runner.cleanup()
