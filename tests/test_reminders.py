"""Plans and reminders through the real Dispatcher: the patient's plan flow with teach-back,
reminders at the right (injected) time, every answer and every bad input, signals to the POH,
discreet mode, missed-after-downtime, a patient who blocks the bot, and the POH's commands.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from bot.app import App
from bot.clock import FrozenClock
from bot.config import Settings
from bot.testing.fake_telegram import FakeTelegram, SentMessage
from scheduler.schedules import Schedule
from tests.catalog import CATALOG, asks, label, option, says, shows
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


def on_days(first: int, last: int, at: str) -> str:
    """How the bot writes a schedule on two weekdays ("elke maandag en woensdag om 09:15")."""
    names = CATALOG.raw("weekdays")
    days = says("schedule.and", first=names[first], last=names[last])
    return says("schedule.weekdays", days=days, time=at)


def snoozed(moment: datetime) -> str:
    """What the bot says after "later": when the reminder comes again."""
    return says("reminder.snoozed", when=CATALOG.format_when(moment, "short"))


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


async def tap_reminder(h: Harness, button: str, message: SentMessage | None = None) -> None:
    h.core.user_taps(PATIENT, message or h.core.last_question(PATIENT), button)
    await h.pump()


# -- making the plan in the chat ---------------------------------------------------------------
async def test_patient_makes_a_plan_with_teach_back(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await harness.say(PATIENT, "/plan")
    assert asks("goal", "plan") in core.last_to(PATIENT).text
    await harness.say(PATIENT, "Weer zelf naar de markt lopen")
    await harness.say(PATIENT, "Elke dag een stukje wandelen")
    await harness.say(PATIENT, "zo vaak als ik kan")  # text where a button is expected
    assert says("bad.use_buttons") in said(core)
    await harness.tap(PATIENT, option("plan", "often", "weekdays"))
    await harness.tap(PATIENT, label("buttons.done"))  # no day chosen yet
    assert says("bad.choose_at_least") in said(core)
    await harness.tap(PATIENT, option("plan", "weekdays", "0"))
    await harness.tap(PATIENT, option("plan", "weekdays", "2"))
    await harness.tap(PATIENT, label("buttons.done"))
    await harness.say(PATIENT, "half negen 's avonds")  # not a time the bot can read
    assert says("bad.time") in said(core)
    await harness.say(PATIENT, "9.15")
    await harness.tap(PATIENT, option("plan", "until", "4w"))
    await harness.tap(PATIENT, option("plan", "measure", "none"))
    await harness.say(PATIENT, "Ik loop op maandag en woensdag om kwart over 9 een rondje")
    summary = core.last_to(PATIENT).text
    days = f"{option('plan', 'weekdays', '0')}, {option('plan', 'weekdays', '2')}"
    assert "Weer zelf naar de markt lopen" in summary and days in summary and "09:15" in summary
    await harness.tap(PATIENT, label("buttons.plan_yes"))
    assert says("plan.closing") in core.last_to(PATIENT).text

    goals = await harness.app.plans.goals(info["patient_id"])
    assert len(goals) == 1 and goals[0].teachback and "kwart over 9" in goals[0].teachback
    action = goals[0].actions[0]
    assert action.schedule.kind == "weekdays" and action.schedule.weekdays == {0, 2}
    assert action.schedule.at == time(9, 15) and action.schedule.end == date(2026, 12, 20)
    # Next due: Wednesday 25 November 09:15 Amsterdam (Monday 09:15 already passed at 10:00).
    assert action.next_due_at == local(date(2026, 11, 25), 9, 15)
    await harness.say(PATIENT, "/mijnplan")
    assert on_days(0, 2, "09:15") in core.last_to(PATIENT).text


async def test_no_again_goes_back_and_keeps_answers(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await harness.say(PATIENT, "/plan")
    for text in ("Minder pijn", "Elke avond rekken"):
        await harness.say(PATIENT, text)
    await harness.tap(PATIENT, option("plan", "often", "daily"))
    await harness.tap(PATIENT, "20:00")
    await harness.tap(PATIENT, option("plan", "until", "open"))
    await harness.tap(PATIENT, option("plan", "measure", "pain"))
    await harness.say(PATIENT, "elke avond om 8 uur rekken")
    await harness.tap(PATIENT, label("buttons.plan_again"))
    assert says("plan.again") in said(core)
    await harness.say(PATIENT, "Beter slapen")
    await harness.say(PATIENT, "Elke avond rekken")
    await harness.tap(PATIENT, option("plan", "often", "once"))  # no "how long" for once
    await harness.tap(PATIENT, "18:00")
    await harness.tap(PATIENT, option("plan", "measure", "pain"))
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
    assert says("plan.busy") in said(core)
    await harness.tap(PATIENT, label("buttons.consent_no"))
    await harness.say(PATIENT, "/plan")
    assert says("consent_declined") in core.last_to(PATIENT).text


async def test_plan_is_offered_after_the_consult(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    before = len(core.to_chat(PATIENT))
    await at(harness, clock, info["consult_at"] + timedelta(minutes=30))
    assert len(core.to_chat(PATIENT)) == before
    await at(harness, clock, info["consult_at"] + timedelta(minutes=61))
    new = texts(core, PATIENT, before)
    assert says("plan.invite") in new[0] and asks("goal", "plan") in new[1]


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
    done = next(d for text, d in reminder.buttons if text == label("reminder.buttons.done"))
    await tap_reminder(harness, label("reminder.buttons.done"), reminder)
    assert says("reminder.well_done") in core.last_to(PATIENT).text
    assert core.last_to(PATIENT) is not reminder and not reminder.reply_markup  # buttons cleared
    count = len(core.to_chat(PATIENT))
    core.user_taps(PATIENT, reminder, data=done)
    await harness.pump()
    assert len(core.to_chat(PATIENT)) == count  # a double tap only gets a quiet toast
    assert core.callback_answers[-1].get("text") == says("toast.already")
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
    await tap_reminder(harness, label("reminder.buttons.not_done"), last_reminder(core))
    assert says("reminder.what_got_in_the_way") in core.last_to(PATIENT).text
    await tap_reminder(harness, label("reminder.barriers.complaints"))
    assert says("reminder.tell_more") in core.last_to(PATIENT).text
    core.user_message(PATIENT, photo=[{"file_id": "p", "file_unique_id": "p", "width": 9, "height": 9}])
    await harness.pump()
    assert says("bad.media") in said(core)  # a photo: kind, and asked again
    await harness.say(PATIENT, "Mijn knie deed zeer na het traplopen")
    assert says("reminder.thanks_next_time") in core.last_to(PATIENT).text
    row = (await reminder_rows(harness.app))[0]
    assert (row["status"], row["barrier"], row["awaiting"]) == ("not_done", "complaints", None)
    assert row["note"] == "Mijn knie deed zeer na het traplopen"
    # Text after the note goes to the conversation again, not to the reminder.
    await harness.say(PATIENT, "hallo")
    assert shows(core.last_to(PATIENT).text, "already_done")


async def test_later_sends_the_reminder_again(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    await at(harness, clock, local(date(2026, 11, 23), 14, 0))
    await tap_reminder(harness, label("reminder.buttons.later"), last_reminder(core))
    labels = [b for b, _ in core.last_to(PATIENT).buttons]
    assert labels == [label(f"reminder.later.{when}") for when in ("1h", "evening", "tomorrow")]
    await tap_reminder(harness, label("reminder.later.1h"))
    assert snoozed(local(date(2026, 11, 23), 15)) in core.last_to(PATIENT).text
    count = len(core.to_chat(PATIENT))
    await at(harness, clock, local(date(2026, 11, 23), 14, 59))
    assert len(core.to_chat(PATIENT)) == count
    await at(harness, clock, local(date(2026, 11, 23), 15, 0))
    again = last_reminder(core)
    assert len(core.to_chat(PATIENT)) == count + 1 and "Tien minuten wandelen" in again.text
    await tap_reminder(harness, label("reminder.buttons.done"), again)
    row = (await reminder_rows(harness.app))[0]
    assert (row["status"], row["later_count"]) == ("done", 1)


async def test_late_evening_later_respects_quiet_hours(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Pillen innemen", "21:00")
    await at(harness, clock, local(date(2026, 11, 23), 21, 0))
    await tap_reminder(harness, label("reminder.buttons.later"), last_reminder(core))
    no_tonight = [label("reminder.later.1h"), label("reminder.later.tomorrow")]
    assert [b for b, _ in core.last_to(PATIENT).buttons] == no_tonight
    await tap_reminder(harness, label("reminder.later.1h"))  # 22:00 is quiet: moves to 08:00
    assert snoozed(local(date(2026, 11, 24), 8)) in core.last_to(PATIENT).text


async def test_measurement_with_range_checks_and_signals(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Bloeddruk meten", "09:00", measurement="blood_pressure")
    poh_before = len(core.to_chat(POH))
    day = date(2026, 11, 24)
    for i, value in enumerate(["130/80", "135/82", "141/85", "150/90"]):
        await at(harness, clock, local(day + timedelta(days=i), 9, 0))
        await tap_reminder(harness, label("reminder.buttons.done"), last_reminder(core))
        assert says("measure.ask.blood_pressure") in core.last_to(PATIENT).text
        if i == 0:
            for bad, expected in (
                ("weet ik niet", "measure.bad_format"),
                ("80/130", "measure.bad_order"),
                ("400/100", "measure.bad_range"),
            ):
                await harness.say(PATIENT, bad)
                again = core.last_to(PATIENT).text
                assert says(expected) in again and says("measure.ask.blood_pressure") in again
        await harness.say(PATIENT, value)
        assert says("measure.noted", value=value) in core.to_chat(PATIENT)[-1].text
    signals = texts(core, POH, poh_before)
    assert len(signals) == 1 and shows(signals[0], "clinician.signal.rises")
    assert "130 → 135 → 141 → 150" in signals[0]
    assert "Bloeddruk meten" not in signals[0]  # no patient words to the POH
    # Far above the practice's limit: the patient is pointed to their practice, the POH is told.
    await at(harness, clock, local(day + timedelta(days=4), 9, 0))
    await tap_reminder(harness, label("reminder.buttons.done"), last_reminder(core))
    await harness.say(PATIENT, "195 op 100")
    assert says("measure.told_practice") in core.last_to(PATIENT).text
    assert shows(core.last_to(POH).text, "clinician.signal.above") and "195/100" in core.last_to(POH).text
    # Agenda: progress with the trend.
    agenda = await harness.app.agenda.text(info["consult_id"])
    name = says("measure.names.blood_pressure")
    trend = says("agenda.trend", name=name, first="130/80", last="195/100", n=5)
    assert agenda is not None and trend in agenda


async def test_not_done_streak_signals_the_poh(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    poh_before = len(core.to_chat(POH))
    for i in range(3):
        await at(harness, clock, local(date(2026, 11, 23) + timedelta(days=i), 14, 0))
        await tap_reminder(harness, label("reminder.buttons.not_done"), last_reminder(core))
        await tap_reminder(harness, label("reminder.buttons.no_answer"))
    signals = texts(core, POH, poh_before)
    streak = says("clinician.signal.not_done", consult=info["consult_id"], detail=3)
    assert len(signals) == 1 and streak in signals[0]


async def test_discreet_mode_hides_the_action_until_tapped(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Insuline spuiten", "14:00")
    await harness.say(PATIENT, "/stil")
    assert says("discreet_on") in core.last_to(PATIENT).text
    await at(harness, clock, local(date(2026, 11, 23), 14, 0))
    reminder = last_reminder(core)
    assert "Insuline" not in reminder.text and says("reminder.discreet_action") in reminder.text
    await tap_reminder(harness, label("reminder.buttons.show"), reminder)
    assert "Insuline spuiten" in reminder.text  # the same message, edited
    await tap_reminder(harness, label("reminder.buttons.done"), reminder)
    assert says("reminder.well_done") in core.last_to(PATIENT).text


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
        await tap_reminder(harness, label("reminder.buttons.done"), last_reminder(core))
    await at(harness, clock, local(date(2026, 11, 30), 18, 30))
    review = last_reminder(core)
    assert says("reminder.review", goal="Fitter worden") in review.text
    await tap_reminder(harness, label("reminder.review_answers.so_so"), review)
    await tap_reminder(harness, label("reminder.buttons.other_time"))
    await tap_reminder(harness, "18:00")
    assert says("reminder.retimed", time="18:00") in core.last_to(PATIENT).text
    goals = await harness.app.plans.goals(info["patient_id"], with_history=True)
    actions = goals[0].actions
    assert [a.ended for a in actions] == [True, False] and actions[1].replaces == action
    assert actions[1].schedule.at == time(18, 0)
    agenda = await harness.app.agenda.text(info["consult_id"])
    assert agenda is not None and "7x gedaan" in agenda and label("reminder.review_answers.so_so") in agenda


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
    assert says("clinician.blocked", consult=info["consult_id"]) in core.last_to(POH).text
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
        assert says("reminder.gone") in core.last_to(PATIENT).text
    await harness.say(PATIENT, "/wis")
    await tap_reminder(harness, label("buttons.erase_yes"))
    assert await reminder_rows(harness.app) == []
    assert await harness.app.plans.goals(info["patient_id"]) == []


async def test_crisis_words_in_a_reminder_note_are_routed(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    info = await people(harness, clock)
    await plan_with(harness.app, info["patient_id"], "Tien minuten wandelen", "14:00")
    await at(harness, clock, local(date(2026, 11, 23), 14, 0))
    await tap_reminder(harness, label("reminder.buttons.not_done"), last_reminder(core))
    await tap_reminder(harness, label("reminder.barriers.motivation"))
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
    goal = (await harness.app.plans.goals(info["patient_id"]))[0].id
    assert core.last_to(POH).text == says("clinician.plan.goal_added", goal=goal, consult=consult)
    await harness.say(POH, f"/actie {goal} 10:30 ma,do +bloeddruk Bloeddruk meten")
    assert on_days(0, 3, "10:30") in core.last_to(POH).text
    await harness.say(POH, f"/plan {consult}")
    shown = core.last_to(POH).text
    assert "Weer fietsen naar de markt" in shown and "(meting)" in shown
    action = (await harness.app.plans.goals(info["patient_id"]))[0].actions[0].id
    for bad, usage in (
        ("/actie", "usage_action"),
        (f"/actie {goal} 25:00 dagelijks Iets", "usage_action"),
        (f"/actie {goal} 08:00 dagelijks +suiker Iets", "usage_action"),
        ("/doel 999 Iets", "usage_goal"),
        ("/stopactie x", "usage_end_action"),
        ("/plan", "usage_plan"),
    ):
        await harness.say(POH, bad)
        assert says(f"clinician.plan.{usage}") in core.last_to(POH).text, bad
    # A time or days the reader cannot use: what is wrong first, then how the command goes.
    for bad, reason in (
        (f"/actie {goal} 25:00 dagelijks Iets", "bad.schedule_time"),
        (f"/actie {goal} 08:00 ma,xx Iets", "bad.schedule_days"),
        (f"/actie {goal} 8:3٣ dagelijks Iets", "bad.schedule_time"),
    ):
        await harness.say(POH, bad)
        assert core.last_to(POH).text.startswith(harness.app.catalog.t(reason)), bad
    await harness.say(POH, f"/stopactie {action}")
    assert says("clinician.plan.action_ended") in core.last_to(POH).text
    await harness.say(POH, f"/planmaken {consult}")
    assert says("clinician.plan.invited", consult=consult) in core.last_to(POH).text
    await harness.app.tick()
    await harness.pump()
    assert asks("goal", "plan") in core.last_to(PATIENT).text


async def test_poh_cannot_touch_another_practice(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, app: App
) -> None:
    info = await people(harness, clock)
    other = await app.repo.practices.add("Andere praktijk", clock.now())
    invite = await app.invites.invite_clinician(other, "Bob")
    await harness.say(5999, f"/start {invite.token}")
    await harness.say(5999, f"/plan {info['consult_id']}")
    assert says("clinician.plan.usage_plan") in core.last_to(5999).text
    goal, action = await plan_with(app, info["patient_id"], "Wandelen", "14:00")
    await harness.say(5999, f"/stopactie {action}")
    assert says("clinician.plan.usage_end_action") in core.last_to(5999).text
    await harness.say(5999, f"/actie {goal} 08:00 dagelijks Iets")
    assert says("clinician.plan.usage_action") in core.last_to(5999).text


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
    await tap_reminder(harness, label("reminder.buttons.done"), last_reminder(core))
    await harness.say(PATIENT, "155/90")  # under the practice's 180/110, over this patient's 150/95
    await at(harness, clock, local(date(2026, 11, 24), 9, 1))
    assert shows(core.last_to(POH).text, "clinician.signal.above") and "155/90" in core.last_to(POH).text
