"""Notices for the practice (bot/services/notices.py): an outbox row for a POH is about a patient,
never to one. Before the one notice service, safety alerts carried the patient as the row's
recipient, so a POH's 403 marked the patient unreachable, a patient who blocked the bot cancelled
the pending alert about them, and the POH's alert was voiced when the patient had read-aloud on."""

from __future__ import annotations

from datetime import date

import pytest

from bot.clock import FrozenClock
from bot.services.notices import PracticeNotices
from bot.storage.models import OutboxKind
from bot.testing.fake_telegram import FakeTelegram
from tests.catalog import label, says
from tests.conftest import Harness
from tests.test_dispatcher import PATIENT, POH, setup_people
from tests.test_reminders import at, local, people, plan_with, reminder_rows, settings  # noqa: F401

DAY = date(2026, 11, 23)


async def test_a_poh_who_blocked_the_bot_leaves_the_patient_reachable(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    core.blocked.add(POH)
    clock.set(local(DAY, 13, 0))
    await harness.say(PATIENT, "ik heb net een hele strip slaappillen doorgeslikt")
    assert says("safety.routes.emergency_112") in "\n".join(m.text for m in core.to_chat(PATIENT)[-3:])
    await harness.pump()
    patient = await harness.app.repo.patients.get(info["patient_id"])
    assert patient is not None and not patient.blocked  # the POH's 403 is not the patient's
    await at(harness, clock, local(DAY, 14, 0))
    assert "Tien minuten wandelen" in core.last_to(PATIENT).text  # reminders still go


async def test_a_patient_who_blocks_the_bot_does_not_cancel_the_alert_about_them(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    clock.set(local(DAY, 13, 58))
    await harness.say(PATIENT, "ik ben het leven zat")  # a check question; the POH hears in 5 min
    question = core.last_to(PATIENT)
    assert [b for b, _ in question.buttons] == [label("buttons.check_yes"), label("buttons.check_no")]
    poh_before = len(core.to_chat(POH))
    core.blocked.add(PATIENT)
    await at(harness, clock, local(DAY, 14, 0))  # the reminder meets a 403: the patient blocked us
    patient = await harness.app.repo.patients.get(info["patient_id"])
    assert patient is not None and patient.blocked
    await at(harness, clock, local(DAY, 14, 4))
    to_poh = [m.text for m in core.to_chat(POH)[poh_before:]]
    assert any(says("safety.flags.suicide") in t for t in to_poh), to_poh  # the unanswered check
    assert any(says("clinician.blocked", consult=info["consult_id"]) in t for t in to_poh)


async def test_no_row_for_a_poh_names_a_patient_as_its_recipient(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    """The outbox's patient is whom a row goes to: it picks the read-aloud voice, and a 403 or
    an erasure acts on that patient. Rows for a POH leave it empty (the payload says whom about)."""
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, "Eerlijk gezegd zie ik het niet meer zitten")  # an alert
    await harness.say(PATIENT, "ik ben het leven zat")  # a check, and its notice in 5 minutes
    rows = await harness.app.db.fetchall("SELECT kind, chat_id, patient_id FROM outbox")
    to_poh = [dict(r) for r in rows if r["chat_id"] == POH]
    assert {r["kind"] for r in to_poh} == {OutboxKind.ALERT} and len(to_poh) == 2
    assert all(r["patient_id"] is None for r in to_poh)


async def test_a_notice_goes_to_the_consults_own_poh_or_to_every_poh(
    harness: Harness, clock: FrozenClock
) -> None:
    await people(harness, clock)
    notices = PracticeNotices(harness.app.repo)
    practice = (await harness.app.repo.clinicians.by_telegram(POH)).practice_id  # type: ignore[union-attr]
    async with harness.app.repo.transaction():
        told = await notices.tell(OutboxKind.SIGNAL, practice, {"patient_id": 1}, clock.now())
    assert told == 1
    rows = await harness.app.repo.outbox.rows(OutboxKind.SIGNAL)
    assert [r["chat_id"] for r in rows] == [POH]
    with pytest.raises(ValueError):
        await notices.tell(OutboxKind.REMINDER, practice, {}, clock.now())  # not for a POH
