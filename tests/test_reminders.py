"""Plans and reminders through the real Dispatcher: the patient's plan flow with teach-back,
reminders at the right (injected) time, every answer and every bad input, signals to the POH,
discreet mode, missed-after-downtime, a patient who blocks the bot, and the POH's commands.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from bot.app import App
from bot.clock import FrozenClock
from bot.config import Settings
from bot.testing.fake_telegram import FakeTelegram, SentMessage
from scheduler.schedules import Schedule
from tests.conftest import Harness, make_practice
from tests.test_dispatcher import PATIENT, POH, complete_intake

AMS = Settings(_env_file=None).zone


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Fast sends in tests: the per-chat limit of Telegram is exercised in test_outbox and the benchmark.
    return settings.model_copy(update={"send_rate_per_chat_per_second": 1000, "send_rate_per_second": 1000})


async def people(h: Harness, clock: FrozenClock, *, intake: bool = True) -> dict[str, Any]:
    info = await make_practice(h.app, clock)
    await h.say(POH, f"/start {info['clinician'].token}")
    await h.say(PATIENT, f"/start {info['patient'].token}")
    if intake:
        await complete_intake(h)  # type: ignore[arg-type]
    patient = await h.app.repo.patients.by_telegram(PATIENT)
    assert patient is not None
    info["patient_id"] = patient.id
    info["consult_id"] = info["patient"].consult_id
    return info


def local(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=AMS)


async def plan_with(
    app: App, patient_id: int, what: str, at: str, *, measurement: str | None = None, kind: str = "daily"
) -> tuple[int, int]:
    goal = await app.plans.add_goal(patient_id, "Fitter worden", "cli")
    schedule = Schedule(kind, time.fromisoformat(at), app.clock.now().astimezone(AMS).date())
    action = await app.plans.add_action(goal, what, schedule, "cli", measurement)
    return goal, action


async def at(h: Harness, clock: FrozenClock, moment: datetime) -> None:
    """Move the clock and let the scheduler tick, as the APScheduler job would."""
    clock.set(moment)
    await h.app.tick()
    await h.pump()


def said(core: FakeTelegram, chat: int = PATIENT, n: int = 2) -> str:
    """The last ``n`` messages to a chat, joined (a note and the question come separately)."""
    return "\n".join(m.text for m in core.to_chat(chat)[-n:])


def texts(core: FakeTelegram, chat: int, since: int = 0) -> list[str]:
    return [m.text for m in core.to_chat(chat)[since:]]


async def reminder_rows(app: App) -> list[dict[str, Any]]:
    rows = await app.db.fetchall("SELECT * FROM reminders ORDER BY id")
    return [dict(r) for r in rows]


def last_reminder(core: FakeTelegram) -> SentMessage:
    for message in reversed(core.to_chat(PATIENT)):
        if any(d.startswith("r:") for _, d in message.buttons):
            return message
    raise AssertionError("no reminder sent")


async def tap_reminder(h: Harness, label: str, message: SentMessage | None = None) -> None:
    h.core.user_taps(PATIENT, message or h.core.last_question(PATIENT), label)
    await h.pump()


# -- making the plan in the chat ---------------------------------------------------------------
async def test_patient_makes_a_plan_with_teach_back(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await harness.say(PATIENT, "/plan")
    assert "bereiken" in core.last_to(PATIENT).text
    await harness.say(PATIENT, "Weer zelf naar de markt lopen")
    await harness.say(PATIENT, "Elke dag een stukje wandelen")
    await harness.say(PATIENT, "zo vaak als ik kan")  # text where a button is expected
    assert "Tik op een van de knoppen" in said(core)
    await harness.tap(PATIENT, "Op vaste dagen")
    await harness.tap(PATIENT, "Klaar")  # no day chosen yet
    assert "minstens één dag" in said(core)
    await harness.tap(PATIENT, "Maandag")
    await harness.tap(PATIENT, "Woensdag")
    await harness.tap(PATIENT, "Klaar")
    await harness.say(PATIENT, "half negen 's avonds")  # not a time the bot can read
    assert "geen tijd" in said(core)
    await harness.say(PATIENT, "9.15")
    await harness.tap(PATIENT, "Vier weken")
    await harness.tap(PATIENT, "Nee, niets meten")
    await harness.say(PATIENT, "Ik loop op maandag en woensdag om kwart over 9 een rondje")
    summary = core.last_to(PATIENT).text
    assert (
        "Weer zelf naar de markt lopen" in summary and "Maandag, Woensdag" in summary and "09:15" in summary
    )
    await harness.tap(PATIENT, "Ja, dit klopt")
    assert "Uw plan staat klaar" in core.last_to(PATIENT).text

    goals = await harness.app.plans.goals(info["patient_id"])
    assert len(goals) == 1 and goals[0].teachback and "kwart over 9" in goals[0].teachback
    action = goals[0].actions[0]
    assert action.schedule.kind == "weekdays" and action.schedule.weekdays == {0, 2}
    assert action.schedule.at == time(9, 15) and action.schedule.end == date(2026, 12, 20)
    # Next due: Wednesday 25 November 09:15 Amsterdam (Monday 09:15 already passed at 10:00).
    assert action.next_due_at == local(date(2026, 11, 25), 9, 15)
    await harness.say(PATIENT, "/mijnplan")
    assert "elke maandag en woensdag om 09:15" in core.last_to(PATIENT).text


async def test_no_again_goes_back_and_keeps_answers(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await harness.say(PATIENT, "/plan")
    for text in ("Minder pijn", "Elke avond rekken"):
        await harness.say(PATIENT, text)
    await harness.tap(PATIENT, "Elke dag")
    await harness.tap(PATIENT, "20:00")
    await harness.tap(PATIENT, "Zolang het helpt")
    await harness.tap(PATIENT, "Pijn, als cijfer")
    await harness.say(PATIENT, "elke avond om 8 uur rekken")
    await harness.tap(PATIENT, "Nee, opnieuw")
    assert "doen het opnieuw" in said(core)
    await harness.say(PATIENT, "Beter slapen")
    await harness.say(PATIENT, "Elke avond rekken")
    await harness.tap(PATIENT, "Eén keer")  # no "how long" for once
    await harness.tap(PATIENT, "18:00")
    await harness.tap(PATIENT, "Pijn, als cijfer")
    await harness.say(PATIENT, "vanavond om 6 uur rekken")
    await harness.say(PATIENT, "ja")
    goals = await harness.app.plans.goals(info["patient_id"])
    assert [g.text for g in goals] == ["Beter slapen"]
    action = goals[0].actions[0]
    assert action.schedule.kind == "once" and action.measurement == "pain"


async def test_plan_waits_for_unfinished_intake_and_respects_no_consent(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await people(harness, clock, intake=False)
    await harness.say(PATIENT, "/plan")
    assert "Maak die eerst af" in said(core)
    await harness.tap(PATIENT, "Nee, liever niet")
    await harness.say(PATIENT, "/plan")
    assert "Ik stel u geen vragen" in core.last_to(PATIENT).text


async def test_plan_is_offered_after_the_consult(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    before = len(core.to_chat(PATIENT))
    await at(harness, clock, info["consult_at"] + timedelta(minutes=30))
    assert len(core.to_chat(PATIENT)) == before
    await at(harness, clock, info["consult_at"] + timedelta(minutes=61))
    new = texts(core, PATIENT, before)
    assert "samen uw plan" in new[0] and "bereiken" in new[1]


# -- reminders ---------------------------------------------------------------------------------
async def test_reminder_arrives_on_time_and_done_is_recorded(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    before = len(core.to_chat(PATIENT))
    await at(harness, clock, local(date(2026, 11, 23), 13, 59))
    assert len(core.to_chat(PATIENT)) == before
    await at(harness, clock, local(date(2026, 11, 23), 14, 0))
    reminder = last_reminder(core)
    assert "Tien minuten wandelen" in reminder.text
    done = next(d for label, d in reminder.buttons if "Gedaan" in label)
    await tap_reminder(harness, "Gedaan", reminder)
    assert "Goed gedaan" in core.last_to(PATIENT).text
    assert core.last_to(PATIENT) is not reminder and not reminder.reply_markup  # buttons cleared
    count = len(core.to_chat(PATIENT))
    core.user_taps(PATIENT, reminder, data=done)
    await harness.pump()
    assert len(core.to_chat(PATIENT)) == count  # a double tap only gets a quiet toast
    assert core.callback_answers[-1].get("text") == "Uw antwoord staat er al."
    rows = await reminder_rows(harness.app)
    assert [(r["status"], r["kind"]) for r in rows] == [("done", "action")]
    # The next day's reminder comes the next day.
    await at(harness, clock, local(date(2026, 11, 24), 14, 0))
    assert [r["status"] for r in await reminder_rows(harness.app)] == ["done", "pending"]


async def test_not_done_asks_what_got_in_the_way(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    await at(harness, clock, local(date(2026, 11, 23), 14, 0))
    await tap_reminder(harness, "Niet gelukt", last_reminder(core))
    assert "Wat zat in de weg?" in core.last_to(PATIENT).text
    await tap_reminder(harness, "Pijn of klachten")
    assert "iets over vertellen" in core.last_to(PATIENT).text
    core.user_message(PATIENT, photo=[{"file_id": "p", "file_unique_id": "p", "width": 9, "height": 9}])
    await harness.pump()
    assert "kan ik niet lezen" in said(core)  # a photo: kind, and asked again
    await harness.say(PATIENT, "Mijn knie deed zeer na het traplopen")
    assert "Dank u" in core.last_to(PATIENT).text
    row = (await reminder_rows(harness.app))[0]
    assert (row["status"], row["barrier"], row["awaiting"]) == ("not_done", "complaints", None)
    assert row["note"] == "Mijn knie deed zeer na het traplopen"
    # Text after the note goes to the conversation again, not to the reminder.
    await harness.say(PATIENT, "hallo")
    assert "al klaar" in core.last_to(PATIENT).text


async def test_later_sends_the_reminder_again(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    await at(harness, clock, local(date(2026, 11, 23), 14, 0))
    await tap_reminder(harness, "Later", last_reminder(core))
    labels = [b for b, _ in core.last_to(PATIENT).buttons]
    assert labels == ["Over een uur", "Vanavond", "Morgen"]
    await tap_reminder(harness, "Over een uur")
    assert "23 november, 15:00" in core.last_to(PATIENT).text
    count = len(core.to_chat(PATIENT))
    await at(harness, clock, local(date(2026, 11, 23), 14, 59))
    assert len(core.to_chat(PATIENT)) == count
    await at(harness, clock, local(date(2026, 11, 23), 15, 0))
    again = last_reminder(core)
    assert len(core.to_chat(PATIENT)) == count + 1 and "Tien minuten wandelen" in again.text
    await tap_reminder(harness, "Gedaan", again)
    row = (await reminder_rows(harness.app))[0]
    assert (row["status"], row["later_count"]) == ("done", 1)


async def test_late_evening_later_respects_quiet_hours(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Pillen innemen", "21:00")
    await at(harness, clock, local(date(2026, 11, 23), 21, 0))
    await tap_reminder(harness, "Later", last_reminder(core))
    assert [b for b, _ in core.last_to(PATIENT).buttons] == ["Over een uur", "Morgen"]  # no "tonight"
    await tap_reminder(harness, "Over een uur")  # 22:00 is quiet: moves to 08:00
    assert "24 november, 08:00" in core.last_to(PATIENT).text


async def test_measurement_with_range_checks_and_signals(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Bloeddruk meten", "09:00", measurement="blood_pressure")
    poh_before = len(core.to_chat(POH))
    day = date(2026, 11, 24)
    for i, value in enumerate(["130/80", "135/82", "141/85", "150/90"]):
        await at(harness, clock, local(day + timedelta(days=i), 9, 0))
        await tap_reminder(harness, "Gedaan", last_reminder(core))
        assert "Wat is uw bloeddruk?" in core.last_to(PATIENT).text
        if i == 0:
            for bad, expected in (
                ("weet ik niet", "niet lezen"),
                ("80/130", "eerste getal"),
                ("400/100", "kan niet kloppen"),
            ):
                await harness.say(PATIENT, bad)
                assert expected in core.last_to(PATIENT).text and "135/85" in core.last_to(PATIENT).text
        await harness.say(PATIENT, value)
        assert f"{value} bewaard" in core.to_chat(PATIENT)[-1].text
    signals = texts(core, POH, poh_before)
    assert len(signals) == 1 and "steeg" in signals[0] and "130 → 135 → 141 → 150" in signals[0]
    assert "Bloeddruk meten" not in signals[0]  # no patient words to the POH
    # Far above the practice's limit: the patient is pointed to their practice, the POH is told.
    await at(harness, clock, local(day + timedelta(days=4), 9, 0))
    await tap_reminder(harness, "Gedaan", last_reminder(core))
    await harness.say(PATIENT, "195 op 100")
    assert "huisartsenpost" in core.last_to(PATIENT).text
    assert "boven de grens" in core.last_to(POH).text and "195/100" in core.last_to(POH).text
    # Agenda: progress with the trend.
    agenda = await harness.app.agenda.text(info["consult_id"])
    assert agenda is not None and "bloeddruk: 130/80 → 195/100 (5 metingen)" in agenda


async def test_not_done_streak_signals_the_poh(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    poh_before = len(core.to_chat(POH))
    for i in range(3):
        await at(harness, clock, local(date(2026, 11, 23) + timedelta(days=i), 14, 0))
        await tap_reminder(harness, "Niet gelukt", last_reminder(core))
        await tap_reminder(harness, "Zeg ik liever niet")
    signals = texts(core, POH, poh_before)
    assert len(signals) == 1 and "3 keer op rij niet" in signals[0] and "#" in signals[0]


async def test_discreet_mode_hides_the_action_until_tapped(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Insuline spuiten", "14:00")
    await harness.say(PATIENT, "/stil")
    assert "alleen: tijd voor uw actie" in core.last_to(PATIENT).text
    await at(harness, clock, local(date(2026, 11, 23), 14, 0))
    reminder = last_reminder(core)
    assert "Insuline" not in reminder.text and "Tijd voor uw actie" in reminder.text
    await tap_reminder(harness, "Laat zien", reminder)
    assert "Insuline spuiten" in reminder.text  # the same message, edited
    await tap_reminder(harness, "Gedaan", reminder)
    assert "Goed gedaan" in core.last_to(PATIENT).text


async def test_after_downtime_late_reminders_are_missed_not_sent(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    before = len(core.to_chat(PATIENT))
    # The bot was down from before 14:00 on Monday until Wednesday 15:30.
    await at(harness, clock, local(date(2026, 11, 25), 15, 30))
    rows = await reminder_rows(harness.app)
    assert [r["status"] for r in rows] == ["missed", "missed", "pending"]
    assert len(core.to_chat(PATIENT)) == before + 1  # only Wednesday's (1.5 h late, within 2 h)
    agenda = await harness.app.agenda.text(info["consult_id"])
    assert agenda is not None and "2x gemist" in agenda


async def test_weekly_look_back_can_change_the_time(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    _, action = await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    for i in range(7):
        await at(harness, clock, local(date(2026, 11, 23) + timedelta(days=i), 14, 0))
        await tap_reminder(harness, "Gedaan", last_reminder(core))
    await at(harness, clock, local(date(2026, 11, 30), 18, 30))
    review = last_reminder(core)
    assert "Hoe ging het deze week?" in review.text and "Fitter worden" in review.text
    await tap_reminder(harness, "Gaat wel", review)
    await tap_reminder(harness, "Ander tijdstip")
    await tap_reminder(harness, "18:00")
    assert "om 18:00" in core.last_to(PATIENT).text
    goals = await harness.app.plans.goals(info["patient_id"], with_history=True)
    actions = goals[0].actions
    assert [a.ended for a in actions] == [True, False] and actions[1].replaces == action
    assert actions[1].schedule.at == time(18, 0)
    agenda = await harness.app.agenda.text(info["consult_id"])
    assert agenda is not None and "7x gedaan" in agenda and "Gaat wel" in agenda


async def test_blocked_patient_is_marked_and_the_poh_told(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    core.blocked.add(PATIENT)
    await at(harness, clock, local(date(2026, 11, 23), 14, 0))
    patient = await harness.app.repo.patients.get(info["patient_id"])
    assert patient is not None and patient.blocked
    await at(harness, clock, local(date(2026, 11, 23), 14, 0, 15))  # the next tick tells the POH
    assert "geblokkeerd" in core.last_to(POH).text
    await at(harness, clock, local(date(2026, 11, 24), 14, 0))  # nothing more is even tried
    assert [r["status"] for r in await reminder_rows(harness.app)] == ["pending"]
    core.blocked.discard(PATIENT)
    await harness.say(PATIENT, "hallo")  # they unblocked us and write again
    patient = await harness.app.repo.patients.get(info["patient_id"])
    assert patient is not None and not patient.blocked
    await at(harness, clock, local(date(2026, 11, 25), 14, 0))
    assert "Tien minuten wandelen" in last_reminder(core).text


async def test_old_and_forged_reminder_buttons(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    await at(harness, clock, local(date(2026, 11, 23), 14, 0))
    reminder = last_reminder(core)
    for data in ("r:999:done", "r:abc", "r:1:explode"):
        core.user_taps(PATIENT, reminder, data=data)
        await harness.pump()
        assert "seintje is er niet meer" in core.last_to(PATIENT).text
    await harness.say(PATIENT, "/wis")
    await tap_reminder(harness, "Ja, alles wissen")
    assert await reminder_rows(harness.app) == []
    assert await harness.app.plans.goals(info["patient_id"]) == []


async def test_crisis_words_in_a_reminder_note_are_routed(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    await at(harness, clock, local(date(2026, 11, 23), 14, 0))
    await tap_reminder(harness, "Niet gelukt", last_reminder(core))
    await tap_reminder(harness, "Geen zin")
    await harness.say(PATIENT, "ik zie het niet meer zitten, ik wil dood")
    sent = texts(core, PATIENT)[-3:]
    assert any("113" in t for t in sent)
    assert (await reminder_rows(harness.app))[0]["note"].startswith("ik zie het")


# -- the POH's commands ------------------------------------------------------------------------
async def test_poh_reads_and_changes_the_plan_in_telegram(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    consult = info["consult_id"]
    await harness.say(POH, f"/plan {consult}")
    assert "Nog geen doelen" in core.last_to(POH).text
    await harness.say(POH, f"/doel {consult} Weer fietsen naar de markt")
    goal = int(re.findall(r"Doel (\d+)", core.last_to(POH).text)[0])
    await harness.say(POH, f"/actie {goal} 10:30 ma,do +bloeddruk Bloeddruk meten")
    assert "elke maandag en donderdag om 10:30" in core.last_to(POH).text
    await harness.say(POH, f"/plan {consult}")
    shown = core.last_to(POH).text
    assert "Weer fietsen naar de markt" in shown and "(meting)" in shown
    action = int(shown.split("Actie ")[1].split(":")[0])
    bad_commands = (
        "/actie",
        f"/actie {goal} 25:00 dagelijks Iets",
        f"/actie {goal} 08:00 dagelijks +suiker Iets",
    )
    for bad in (*bad_commands, "/doel 999 Iets", "/stopactie x", "/plan"):
        await harness.say(POH, bad)
        assert "Typ /" in core.last_to(POH).text
    # A time or days the reader cannot use: what is wrong first, then how the command goes.
    for bad, reason in (
        (f"/actie {goal} 25:00 dagelijks Iets", "bad.schedule_time"),
        (f"/actie {goal} 08:00 ma,xx Iets", "bad.schedule_days"),
        (f"/actie {goal} 8:3٣ dagelijks Iets", "bad.schedule_time"),
    ):
        await harness.say(POH, bad)
        assert core.last_to(POH).text.startswith(harness.app.catalog.t(reason)), bad
    await harness.say(POH, f"/stopactie {action}")
    assert "gestopt" in core.last_to(POH).text
    await harness.say(POH, f"/planmaken {consult}")
    assert "krijgt nu de vraag" in core.last_to(POH).text
    await harness.app.tick()
    await harness.pump()
    assert "bereiken" in core.last_to(PATIENT).text


async def test_poh_cannot_touch_another_practice(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, app: App
) -> None:
    info = await people(harness, clock)
    other = await app.repo.practices.add("Andere praktijk", clock.now())
    invite = await app.invites.invite_clinician(other, "Bob")
    await harness.say(5999, f"/start {invite.token}")
    await harness.say(5999, f"/plan {info['consult_id']}")
    assert "Typ /plan" in core.last_to(5999).text
    goal, action = await plan_with(app, info["patient_id"], "Wandelen", "14:00")
    await harness.say(5999, f"/stopactie {action}")
    assert "Typ /stopactie" in core.last_to(5999).text
    await harness.say(5999, f"/actie {goal} 08:00 dagelijks Iets")
    assert "Typ /actie" in core.last_to(5999).text


async def test_reminders_keep_their_local_time_across_daylight_saving(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    clock.set(local(date(2027, 3, 26), 12, 0))  # the Friday before the clocks go forward
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "08:00")
    sent: list[str] = []
    for day in (27, 28, 29):
        await at(harness, clock, local(date(2027, 3, day), 7, 59))
        before = len(core.to_chat(PATIENT))
        await at(harness, clock, local(date(2027, 3, day), 8, 0))
        assert len(core.to_chat(PATIENT)) == before + 1
        sent.append(clock.now().strftime("%H:%M UTC"))
    assert sent == ["07:00 UTC", "06:00 UTC", "06:00 UTC"]  # 08:00 in Amsterdam each morning


async def test_the_pohs_own_limit_for_a_patient_signals_earlier(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    goal = await harness.app.plans.add_goal(info["patient_id"], "Bloeddruk omlaag", "cli")
    schedule = Schedule("daily", time(9, 0), date(2026, 11, 24))
    await harness.app.plans.add_action(
        goal, "Bloeddruk meten", schedule, "cli", "blood_pressure", limits={"above": [150, 95]}
    )
    await at(harness, clock, local(date(2026, 11, 24), 9, 0))
    await tap_reminder(harness, "Gedaan", last_reminder(core))
    await harness.say(PATIENT, "155/90")  # under the practice's 180/110, over this patient's 150/95
    await at(harness, clock, local(date(2026, 11, 24), 9, 1))
    assert "boven de grens" in core.last_to(POH).text and "155/90" in core.last_to(POH).text
