"""Invites in bulk (issue 15): the HIS list checked as a whole, no duplicates on a second import,
a problem per bad row, in the service, the CLI (its own process) and the web app over HTTP."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from bot.app import App
from bot.clock import FrozenClock
from bot.services.bulk_invites import BulkInvites, parse
from tests.catalog import says
from tests.conftest import run_cli
from tests.test_web import client, csrf_of, log_in, make_account  # noqa: F401  (client: a fixture)

ZONE = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=ZONE)
LIST = "Naam;Datum;Tijd;Voorlezen\nJ. de Vries;2027-01-12;09:30;ja\nA. Bakker;12-01-2027;09:45;\n"


def codes(problems: list) -> list[tuple[int, str]]:
    return [(p.line, p.code) for p in problems]


def test_both_separators_both_date_styles_quotes_and_a_byte_order_mark() -> None:
    comma = '\ufeffnaam,datum,tijd,eenvoudig\n"Jansen, P.",13/01/2027,9.05,nee\n\nK. Smit,2027-1-4,14:00,JA\n'
    rows, problems = parse(comma, ZONE, NOW)
    assert not problems
    # the empty line is skipped
    assert [(r.line, r.name) for r in rows] == [(2, "Jansen, P."), (4, "K. Smit")]
    assert rows[0].consult_at == datetime(2027, 1, 13, 9, 5, tzinfo=ZONE) and rows[0].simple is False
    assert rows[1].simple is True and rows[1].read_aloud is None
    rows, problems = parse(LIST, ZONE, NOW)
    assert not problems and rows[0].read_aloud is True and rows[1].consult_at.day == 12


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [(0, "empty")]),
        ("naam;datum\nX;2027-01-01\n", [(1, "missing_column")]),
        ("naam;datum;tijd\n", [(0, "no_rows")]),
        ("naam;datum;tijd\n;2027-01-12;09:30\n", [(2, "no_name")]),
        ("naam;datum;tijd\nX;31-02-2027;09:30\n", [(2, "bad_date")]),
        ("naam;datum;tijd\nX;2027-01-12;25:00\n", [(2, "bad_time")]),
        ("naam;datum;tijd\nX;2026-11-01;09:30\n", [(2, "past")]),
        ("naam;datum;tijd;voorlezen\nX;2027-01-12;09:30;misschien\n", [(2, "bad_yes_no")]),
        ("naam;datum;tijd;behandelaar\nX;2027-01-12;09:30;Anna\n", [(2, "bad_clinician")]),
        ("naam;datum;tijd\nX;2027-01-12;09:30\nx;12-01-2027;09:30\n", [(3, "twice")]),
        ("naam;datum;tijd\n" + "X" * 101 + ";2027-01-12;09:30\n", [(2, "long_name")]),
    ],
)
def test_every_bad_row_is_named(text: str, expected: list[tuple[int, str]]) -> None:
    rows, problems = parse(text, ZONE, NOW)
    assert codes(problems) == expected
    assert all(p.line != r.line for p in problems for r in rows)


def test_problems_are_in_the_assistants_words(app: App) -> None:
    from bot.services.bulk_invites import describe

    _, problems = parse("naam;datum;tijd\nX;31-02-2027;9:3\n", ZONE, NOW)
    lines = describe(problems, app.catalog.t)
    assert lines == [
        says("poh_bulk.on_line", line=2, problem=says("poh_bulk.problems.bad_date", value="31-02-2027")),
        says("poh_bulk.on_line", line=2, problem=says("poh_bulk.problems.bad_time", value="9:3")),
    ]


async def test_one_bad_row_invites_nobody_and_a_second_import_nobody_twice(
    app: App, clock: FrozenClock
) -> None:
    practice = await app.repo.practices.add("De Linde", clock.now())
    other = await app.repo.practices.add("De Eik", clock.now())
    elsewhere = await app.repo.clinicians.add(other, "Eva", clock.now())
    bulk = BulkInvites(app.repo, app.invites, app.settings.zone)
    bad = LIST + "C. Dekker;2027-01-13;31:00\n"
    result = await bulk.run(practice, bad)
    assert codes(result.problems) == [(4, "bad_time")] and not result.invited
    foreign = LIST.replace("Voorlezen", "Voorlezen;Behandelaar").replace("ja\n", f"ja;{elsewhere}\n", 1)
    result = await bulk.run(practice, foreign)
    assert codes(result.problems) == [(2, "unknown_clinician")]
    assert await app.repo.consults.of_practice(practice) == []  # nothing half-imported

    seen: list[tuple[int, int]] = []
    result = await bulk.run(practice, LIST, progress=lambda done, total: seen.append((done, total)))
    assert result.ok and len(result.invited) == 2 and seen == [(1, 2), (2, 2)]
    first = result.invited[0]
    patient = await app.repo.patients.get(first.invite.patient_id)
    assert patient is not None and patient.display_name == "J. de Vries" and patient.read_aloud is True
    assert await app.invites.valid_invite(first.invite.token) is not None
    assert first.invite.expires_at == first.row.consult_at  # the letter works until the consult

    again = await bulk.run(practice, LIST + "C. Dekker;2027-01-13;10:00\n")
    assert [s.row.line for s in again.skipped] == [2, 3] and len(again.invited) == 1
    assert len(await app.repo.consults.of_practice(practice)) == 3
    # Another practice's identical list is its own: nothing skipped there.
    assert len((await bulk.run(other, LIST)).invited) == 2


async def test_cli_progress_links_letters_and_texts(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"DATABASE_PATH={tmp_path / 'db.sqlite3'}\nBOT_USERNAME=VoorgesprekBot\n")
    assert (await run_cli("practice", "add", "De Linde", cwd=tmp_path))[0] == 0
    (tmp_path / "lijst.csv").write_text(LIST, encoding="utf-8")
    args = ("invite", "patients", "--csv", "lijst.csv", "--practice", "1")
    code, out, err = await run_cli(*args, "--letters", "brieven.html", "--texts", "sms.txt", cwd=tmp_path)
    assert code == 0, err
    links = re.findall(r"https://t\.me/VoorgesprekBot\?start=[\w-]{32}", out)
    assert len(links) == 2 and "2/2" in err and "2 invited" in err
    letters = (tmp_path / "brieven.html").read_text(encoding="utf-8")
    assert letters.count('class="printable letter"') == 2 and all(link in letters for link in links)
    assert "<svg" in letters and "page-break-after" in letters
    texts = (tmp_path / "sms.txt").read_text(encoding="utf-8")
    assert "J. de Vries" in texts and all(link in texts for link in links)
    code, out, err = await run_cli(*args, cwd=tmp_path)
    assert code == 0 and "0 invited, 2 already planned" in err and "start=" not in out
    (tmp_path / "fout.csv").write_text("naam;datum;tijd\nX;2027-13-01;09:30\n", encoding="utf-8")
    code, out, err = await run_cli("invite", "patients", "--csv", "fout.csv", "--practice", "1", cwd=tmp_path)
    assert code == 1 and "Regel 2" in err and "Traceback" not in err
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM consults").fetchone()[0] == 2
    code, _, err = await run_cli("invite", "patients", "--csv", "weg.csv", "--practice", "1", cwd=tmp_path)
    assert code == 2 and "cannot read" in err and "Traceback" not in err


async def test_web_upload_and_paste(app: App, clock: FrozenClock, client: TestClient) -> None:  # noqa: F811
    practice = await app.repo.practices.add("De Linde", clock.now())
    await make_account(app, clock, practice, "anna", "Anna (POH)")
    csrf = await log_in(client, clock)
    form = await (await client.get("/invite/bulk")).text()
    assert 'enctype="multipart/form-data"' in form
    bad = await client.post("/invite/bulk", data={"csrf": csrf, "list": "naam;datum;tijd\nX;2027-01-12;9\n"})
    page = await bad.text()
    assert bad.status == 400 and 'id="bulk-problems"' in page and "Regel 2" in page
    assert "X;2027-01-12;9" in page  # the pasted list comes back to be fixed

    upload = FormData()
    upload.add_field("csrf", csrf)
    upload.add_field("file", LIST.encode("utf-8-sig"), filename="his.csv", content_type="text/csv")
    response = await client.post("/invite/bulk", data=upload)
    page = await response.text()
    assert response.status == 200 and page.count('class="printable letter"') == 2
    assert page.count("<textarea readonly") == 2 and "J. de Vries" in page
    db = sqlite3.connect(app.settings.database_path)
    events = [r[0] for r in db.execute("SELECT event FROM audit_log WHERE detail = 'bulk'")]
    assert events == ["create_invite", "create_invite"]
    again = await (await client.post("/invite/bulk", data={"csrf": csrf, "list": LIST})).text()
    assert 'id="bulk-skipped"' in again and 'class="printable letter"' not in again
    forged = await client.post("/invite/bulk", data={"csrf": "nope", "list": LIST})
    assert forged.status == 403
