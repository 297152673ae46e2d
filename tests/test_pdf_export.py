"""The agenda PDF keeps every name and sign: Turkish, Polish and Arabic letters, €, arrows and
bullets come back out of the PDF's text (pypdf). Without a usable font the export says so: a log
line for the admin and a Dutch page for the POH, never a PDF with letters missing."""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from datetime import datetime
from pathlib import Path

import pypdf
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.clock import FrozenClock
from bot.web import exports
from bot.web.server import WebApp
from tests.test_web import log_in, seed

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
NAMES = ["Yılmaz", "Şükrü Çelik", "Ğül Öztürk", "Łukasz Wójcik", "Małgorzata Żółć", "Ærø Ångström"]
ARABIC = "محمد العربي"
SIGNS = ["€ 12,50", "→ daarna", "• eerst", "← terug", "↕ veranderd", "“zo” – ‘zo’", "½ uur"]


def pdf_text(body: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(body))
    return "\n".join(page.extract_text() for page in reader.pages)


def letters(text: str) -> list[str]:
    return sorted(ch for ch in text if not ch.isspace())


@pytest.fixture(autouse=True)
def need_font() -> None:
    if not FONT.exists():
        pytest.fail(f"{FONT} is missing: install Debian's fonts-dejavu-core (tests/run.sh does)")


def test_every_name_and_sign_survives_the_pdf() -> None:
    body_lines = [*NAMES, ARABIC, *SIGNS]
    body = exports.pdf("Agenda · Yılmaz → Łukasz", "\n".join(body_lines), FONT)
    text = pdf_text(body)
    for name in NAMES:
        assert name in text
    # pypdf sometimes moves a space next to a right-to-left line; the signs themselves must be there.
    squeezed = "".join(text.split())
    for sign in SIGNS:
        assert "".join(sign.split()) in squeezed
    # Arabic: every letter is in the PDF's text (unshaped, see exports.pdf); extractors differ in
    # the order they give right-to-left letters back, so compare the letters, not the string.
    arabic_out = "".join(ch for ch in text if unicodedata.bidirectional(ch) == "AL")
    assert letters(arabic_out) == letters(ARABIC)
    assert "Agenda · Yılmaz → Łukasz" in text
    assert pypdf.PdfReader(io.BytesIO(body)).metadata.title == "Agenda · Yılmaz → Łukasz"


def test_signs_the_font_lacks_go_and_letters_it_lacks_show_a_mark() -> None:
    body = exports.pdf("Agenda", "📋 Agenda\n🎤 spraakbericht\nNaam: 李小龍", FONT)
    text = pdf_text(body)
    assert "📋" not in text and "🎤" not in text and "Agenda" in text and "spraakbericht" in text
    # A letter without a glyph is never silently dropped: the POH sees that something is missing.
    assert re.search(r"Naam: \ufffd\ufffd\ufffd", text)


def test_a_missing_font_is_an_error_not_a_pdf_without_letters(tmp_path: Path) -> None:
    with pytest.raises(exports.PdfFontMissing):
        exports.pdf("Agenda", "Yılmaz", tmp_path / "nope.ttf")
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font")
    with pytest.raises(exports.PdfFontMissing):
        exports.pdf("Agenda", "Yılmaz", broken)


async def test_the_web_export_says_in_dutch_when_the_font_is_missing(
    app: App, clock: FrozenClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = await seed(app, clock)
    app.settings.pdf_font = tmp_path / "nope.ttf"
    async with TestClient(TestServer(WebApp(app).routes())) as client:
        await log_in(client, clock)
        with caplog.at_level(logging.ERROR):
            response = await client.get(f"/consult/{data['consult']}/agenda.pdf")
        assert response.status == 503 and response.content_type == "text/html"
        assert app.catalog.t("web.errors.pdf_font") in (await response.text())
    assert "PDF_FONT" in caplog.text and "nope.ttf" in caplog.text
    assert "de Vries" not in caplog.text


async def test_the_web_export_keeps_the_patients_name_and_answers(app: App, clock: FrozenClock) -> None:
    data = await seed(app, clock)
    consult = await app.repo.consults.get(data["consult"])
    assert consult is not None
    invite = await app.invites.invite_patient(
        consult.practice_id,
        datetime(2026, 11, 25, 9, 0, tzinfo=app.settings.zone),
        name="Ayşe Yılmaz-Łukasiewicz",
        read_aloud=False,
        simple=False,
    )
    await app.repo.answers.save(invite.consult_id, "what_matters", "Mijn kleinzoon Emre → €", clock.now())
    await app.repo.consults.set_status(invite.consult_id, "ready", clock.now())
    async with TestClient(TestServer(WebApp(app).routes())) as client:
        await log_in(client, clock)
        response = await client.get(f"/consult/{invite.consult_id}/agenda.pdf")
        assert response.status == 200 and response.content_type == "application/pdf"
        text = pdf_text(await response.read())
    assert "Ayşe Yılmaz-Łukasiewicz" in text and "Mijn kleinzoon Emre → €" in text
