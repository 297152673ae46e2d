"""The practice in numbers, anonymised: no cell ever shows fewer than ``K`` patients.

Per patient only their latest completed intake counts. Distributions of scores per dimension,
the most frequent themes and priorities, intake completion, reminder adherence. A count below
``K`` is shown as "< K" and never used to derive another cell.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.app import App
from bot.storage.models import ConsultStatus, ReminderStatus

K = 5
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
BANDS = (("0-3", 0, 3), ("4-6", 4, 6), ("7-10", 7, 10))


@dataclass
class Population:
    patients: int = 0
    status: dict[str, int | None] = field(default_factory=dict)
    bands: dict[str, dict[str, int | None]] = field(default_factory=dict)  # dimension -> band -> count
    themes: list[tuple[str, int]] = field(default_factory=list)
    priorities: list[tuple[str, int]] = field(default_factory=list)
    adherence: float | None = None  # done / answered or missed, over patients with reminders
    adherence_patients: int = 0


def _safe(count: int) -> int | None:
    """A count, or None when it is too small to show."""
    return count if count >= K else None


async def population(app: App, practice_id: int) -> Population:
    consults = await app.repo.consults.of_practice(practice_id)
    latest: dict[int, int] = {}
    status: Counter[str] = Counter()
    for c in consults:
        if c.status == ConsultStatus.ERASED:
            continue
        status[c.status] += 1
        if c.status == ConsultStatus.READY:
            latest[c.patient_id] = c.id
    out = Population(patients=len({c.patient_id for c in consults if c.status != ConsultStatus.ERASED}))
    out.status = {s: _safe(n) for s, n in status.items()}
    bands: dict[str, Counter[str]] = {d.name: Counter() for d in app.catalog.dimensions}
    themes: Counter[str] = Counter()
    priorities: Counter[str] = Counter()
    done = total = 0
    with_reminders = 0
    for patient_id, consult_id in latest.items():
        answers = await app.repo.answers.of_consult(consult_id)
        patient_themes = set()
        for dim in app.catalog.dimensions:
            score = answers.get(f"{dim.id}.score")
            if isinstance(score, int):
                band = next(name for name, low, high in BANDS if low <= score <= high)
                bands[dim.name][band] += 1
            patient_themes |= set(answers.get(f"{dim.id}.hard") or [])
        themes.update(app.catalog.theme(t).label for t in patient_themes)
        priorities.update(
            {p["id"] for p in answers.get("priorities") or [] if str(p["id"]).startswith(("d:", "t:"))}
        )
        reminders = await app.reminders.reminders.of_patient(patient_id, _EPOCH, app.clock.now())
        outcomes = [
            r.status
            for r in reminders
            if r.kind == "action"
            and r.status in (ReminderStatus.DONE, ReminderStatus.NOT_DONE, ReminderStatus.MISSED)
        ]
        if outcomes:
            with_reminders += 1
            done += outcomes.count(ReminderStatus.DONE)
            total += len(outcomes)
    out.bands = {dim: {band: _safe(counts[band]) for band, _, _ in BANDS} for dim, counts in bands.items()}
    out.themes = [(label, n) for label, n in themes.most_common() if n >= K]
    out.priorities = [(_priority_label(app, p), n) for p, n in priorities.most_common() if n >= K]
    if with_reminders >= K and total:
        out.adherence = done / total
        out.adherence_patients = with_reminders
    return out


def _priority_label(app: App, pid: str) -> str:
    kind, _, ident = pid.partition(":")
    if kind == "d":
        return app.catalog.dimension(ident).name
    return app.catalog.theme(ident).label
