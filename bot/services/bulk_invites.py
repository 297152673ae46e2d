"""Invites in bulk: a list from the practice's HIS (CSV, or pasted), validated as a whole.

The list has a header row and is comma or semicolon separated (what a spreadsheet or HIS export
writes). Columns, in any order, case and accents ignored:

- ``naam`` - the patient's name as the practice writes it (only the POH sees it; never sent);
- ``datum`` - the consult's day, ``YYYY-MM-DD`` or ``DD-MM-YYYY`` (also with ``/`` or ``.``);
- ``tijd`` - ``HH:MM`` (also ``H:MM`` and ``HH.MM``);
- optional ``behandelaar`` (a clinician id of the practice, who gets the agenda),
  ``eenvoudig`` and ``voorlezen`` (ja / nee / leeg: the patient chooses).

Every row is checked before anything is stored; one bad row stores nothing and every problem is
named by its line. A row that matches a consult already planned (same name, same moment, a patient
who is not erased) is skipped, so importing the same list twice invites nobody twice. The new
invites are made in one transaction. Their links work until the consult (a letter may be sent
weeks ahead), at least as long as a single invite's.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from bot.services.invites import MAX_NAME, InviteError, InviteService, PatientInvite
from bot.storage.models import ConsultStatus, PatientStatus
from bot.storage.ports import UnitOfWork

MAX_ROWS = 2000  # one list; a whole practice's chronic care population fits
MAX_BYTES = 1_000_000
REQUIRED = ("naam", "datum", "tijd")
# Header words -> our column; a practice's export may use either.
COLUMNS = {
    "naam": "naam",
    "name": "naam",
    "patient": "naam",
    "datum": "datum",
    "date": "datum",
    "tijd": "tijd",
    "time": "tijd",
    "behandelaar": "behandelaar",
    "clinician": "behandelaar",
    "poh": "behandelaar",
    "eenvoudig": "eenvoudig",
    "simple": "eenvoudig",
    "voorlezen": "voorlezen",
    "read_aloud": "voorlezen",
}
YES_NO = {"ja": True, "j": True, "yes": True, "1": True, "nee": False, "n": False, "no": False, "0": False}
_DAY_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_DAY_NL = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")


@dataclass(frozen=True)
class Problem:
    line: int  # the line in the file (the header is line 1); 0: the list as a whole
    code: str  # a key under poh_bulk.problems in content/nl/messages/bulk_invites.yaml
    value: str = ""  # what was found, shown back to the assistant


@dataclass(frozen=True)
class Row:
    line: int
    name: str
    consult_at: datetime  # zone-aware, the practice's zone
    clinician_id: int | None
    simple: bool | None
    read_aloud: bool | None


@dataclass(frozen=True)
class Invited:
    row: Row
    invite: PatientInvite


@dataclass(frozen=True)
class Skipped:
    row: Row
    consult_id: int  # the consult that was already planned


@dataclass
class BulkResult:
    invited: list[Invited]
    skipped: list[Skipped]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def _key(header: str) -> str:
    plain = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z_]", "", plain.strip().lower().replace(" ", "_").replace("-", "_"))


def _delimiter(first_line: str) -> str:
    return ";" if first_line.count(";") > first_line.count(",") else ","


def _day(value: str) -> date | None:
    for pattern, order in ((_DAY_ISO, (1, 2, 3)), (_DAY_NL, (3, 2, 1))):
        m = pattern.match(value)
        if m:
            year, month, day = (int(m.group(i)) for i in order)
            try:
                return date(year, month, day)
            except ValueError:
                return None
    return None


def _time(value: str) -> time | None:
    m = _TIME.match(value)
    if not m:
        return None
    try:
        return time(int(m.group(1)), int(m.group(2)))
    except ValueError:
        return None


def parse(text: str, zone: ZoneInfo, now: datetime) -> tuple[list[Row], list[Problem]]:
    """The rows of a list, or the problems that keep it from being imported (pure)."""
    if len(text.encode("utf-8")) > MAX_BYTES:
        return [], [Problem(0, "too_big")]
    text = text.lstrip("\ufeff")  # Excel's byte order mark
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return [], [Problem(0, "empty")]
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=_delimiter(lines[0]))
    try:
        table = list(reader)
    except csv.Error:
        return [], [Problem(0, "unreadable")]
    header = [COLUMNS.get(_key(h), "") for h in table[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        return [], [Problem(1, "missing_column", ", ".join(missing))]
    body = [(i + 1, cells) for i, cells in enumerate(table) if i > 0 and any(c.strip() for c in cells)]
    if not body:
        return [], [Problem(0, "no_rows")]
    if len(body) > MAX_ROWS:
        return [], [Problem(0, "too_many", str(MAX_ROWS))]
    rows: list[Row] = []
    problems: list[Problem] = []
    seen: dict[tuple[str, datetime], int] = {}
    for line, cells in body:
        values = {col: (cells[i].strip() if i < len(cells) else "") for i, col in enumerate(header) if col}
        found: list[Problem] = []
        name = " ".join(values["naam"].split())
        if not name:
            found.append(Problem(line, "no_name"))
        elif len(name) > MAX_NAME:
            found.append(Problem(line, "long_name", str(MAX_NAME)))
        day, hour = _day(values["datum"]), _time(values["tijd"])
        if day is None:
            found.append(Problem(line, "bad_date", values["datum"]))
        if hour is None:
            found.append(Problem(line, "bad_time", values["tijd"]))
        moment = datetime.combine(day, hour, zone) if day and hour else None
        if moment is not None and moment <= now:
            found.append(Problem(line, "past", values["datum"]))
        clinician: int | None = None
        if values.get("behandelaar"):
            if values["behandelaar"].isdigit():
                clinician = int(values["behandelaar"])
            else:
                found.append(Problem(line, "bad_clinician", values["behandelaar"]))
        choices: dict[str, bool | None] = {}
        for col in ("eenvoudig", "voorlezen"):
            raw = values.get(col, "").lower()
            choices[col] = YES_NO.get(raw) if raw else None
            if raw and raw not in YES_NO:
                found.append(Problem(line, "bad_yes_no", f"{col}: {values[col]}"))
        if not found and moment is not None:
            twin = seen.get((name.casefold(), moment))
            if twin is not None:
                found.append(Problem(line, "twice", str(twin)))
            seen[(name.casefold(), moment)] = line
        problems += found
        if not found and moment is not None:
            rows.append(Row(line, name, moment, clinician, choices["eenvoudig"], choices["voorlezen"]))
    return rows, problems


class BulkInvites:
    def __init__(self, repo: UnitOfWork, invites: InviteService, zone: ZoneInfo) -> None:
        self.repo = repo
        self.invites = invites
        self.zone = zone

    async def _planned(self, practice_id: int) -> dict[tuple[str, datetime], int]:
        """(name, moment) -> consult id of every consult still planned in the practice."""
        out: dict[tuple[str, datetime], int] = {}
        names: dict[int, str | None] = {}
        for consult in await self.repo.consults.of_practice(practice_id):
            if consult.status in (ConsultStatus.ERASED, ConsultStatus.DECLINED):
                continue
            if consult.patient_id not in names:
                patient = await self.repo.patients.get(consult.patient_id)
                ok = patient is not None and patient.status != PatientStatus.ERASED
                names[consult.patient_id] = patient.display_name if ok and patient else None
            name = names[consult.patient_id]
            if name:
                out[(" ".join(name.split()).casefold(), consult.scheduled_at)] = consult.id
        return out

    async def run(
        self,
        practice_id: int,
        text: str,
        *,
        default_clinician: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> BulkResult:
        """Check the whole list, then invite every new row in one transaction (or nothing)."""
        now = self.invites.clock.now()
        rows, problems = parse(text, self.zone, now)
        if problems:
            return BulkResult([], [], problems)
        known = set()
        for clinician_id in {r.clinician_id for r in rows if r.clinician_id is not None}:
            clinician = await self.repo.clinicians.get(clinician_id)
            if clinician is not None and clinician.practice_id == practice_id:
                known.add(clinician_id)
        problems = [
            Problem(r.line, "unknown_clinician", str(r.clinician_id))
            for r in rows
            if r.clinician_id is not None and r.clinician_id not in known
        ]
        if problems:
            return BulkResult([], [], problems)
        planned = await self._planned(practice_id)
        invited: list[Invited] = []
        skipped: list[Skipped] = []
        try:
            async with self.repo.transaction():
                for done, row in enumerate(rows, 1):
                    twin = planned.get((row.name.casefold(), row.consult_at))
                    if twin is not None:
                        skipped.append(Skipped(row, twin))
                    else:
                        invite = await self.invites.invite_patient(
                            practice_id,
                            row.consult_at,
                            clinician_id=row.clinician_id or default_clinician,
                            name=row.name,
                            simple=row.simple,
                            read_aloud=row.read_aloud,
                            until_consult=True,
                        )
                        invited.append(Invited(row, invite))
                    if progress:
                        progress(done, len(rows))
        except InviteError as exc:  # a practice that vanished meanwhile: nothing is stored
            return BulkResult([], [], [Problem(0, "failed", str(exc))])
        return BulkResult(invited, skipped, [])


def describe(problems: Sequence[Problem], t: Callable[..., str]) -> list[str]:
    """The problems in the assistant's words (``poh_bulk.problems.*``), one line each."""
    out = []
    for p in problems:
        text = t(f"poh_bulk.problems.{p.code}", value=p.value)
        out.append(t("poh_bulk.on_line", line=p.line, problem=text) if p.line else text)
    return out
