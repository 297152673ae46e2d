"""The care plan model: goals and actions with history, next due moments across DST."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from bot.app import App
from bot.clock import FrozenClock
from bot.content import Catalog
from bot.services.plans import PlanError
from scheduler.schedules import Schedule
from tests.conftest import make_practice, next_week_consult, run_cli


async def test_goal_action_and_next_due(app: App, clock: FrozenClock) -> None:
    info = await make_practice(app, clock, clinician=False)
    pid = info["patient"].patient_id
    goal = await app.plans.add_goal(pid, "Weer fietsen met mijn kleinzoon", "clinician:1", date(2027, 1, 15))
    action = await app.plans.add_action(
        goal, "Elke dag 15 minuten wandelen", Schedule("daily", time(11), date(2026, 11, 23)), "cli"
    )
    [view] = await app.plans.goals(pid)
    assert view.text == "Weer fietsen met mijn kleinzoon" and view.follow_up_on == date(2027, 1, 15)
    assert view.actions[0].id == action
    assert view.actions[0].next_due_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Amsterdam
    assert await app.plans.due_actions(datetime(2026, 11, 23, 9, 59, tzinfo=UTC)) == []
    assert await app.plans.due_actions(datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) == [action]


async def test_change_keeps_history(app: App, clock: FrozenClock) -> None:
    info = await make_practice(app, clock, clinician=False)
    pid = info["patient"].patient_id
    goal = await app.plans.add_goal(pid, "Minder pijn in mijn knie", "patient")
    first = await app.plans.add_action(
        goal,
        "Oefeningen doen",
        Schedule("weekdays", time(9), date(2026, 11, 23), weekdays=frozenset({0, 2, 4})),
        "patient",
    )
    clock.advance(timedelta(days=3))
    second = await app.plans.change_action(
        first, "clinician:1", schedule=Schedule("daily", time(9), date(2026, 11, 26))
    )
    now = await app.plans.goals(pid)
    assert [a.id for a in now[0].actions] == [second]
    assert now[0].actions[0].what == "Oefeningen doen" and now[0].actions[0].replaces == first
    history = await app.plans.goals(pid, with_history=True)
    assert [(a.id, a.ended) for a in history[0].actions] == [(first, True), (second, False)]
    with pytest.raises(PlanError):
        await app.plans.change_action(first, "cli", what="iets anders")  # the old row is closed


async def test_end_goal_ends_its_actions_and_due_list(app: App, clock: FrozenClock) -> None:
    info = await make_practice(app, clock, clinician=False)
    pid = info["patient"].patient_id
    goal = await app.plans.add_goal(pid, "Stoppen met roken", "patient")
    await app.plans.add_action(
        goal, "Geen sigaret na het eten", Schedule("daily", time(19), date(2026, 11, 23)), "patient", None
    )
    await app.plans.end_goal(goal)
    assert await app.plans.goals(pid) == []
    assert await app.plans.due_actions(datetime(2027, 1, 1, tzinfo=UTC)) == []
    with pytest.raises(PlanError):
        await app.plans.add_action(goal, "x", Schedule("once", time(9), date(2026, 12, 1)), "cli")


async def test_next_due_after_the_spring_change(app: App, clock: FrozenClock) -> None:
    clock.set(datetime(2027, 3, 27, 12, tzinfo=UTC))
    info = await make_practice(app, clock, clinician=False)
    goal = await app.plans.add_goal(info["patient"].patient_id, "Bloeddruk in de gaten houden", "patient")
    action = await app.plans.add_action(
        goal,
        "Bloeddruk meten",
        Schedule("daily", time(8, 30), date(2027, 3, 28)),
        "patient",
        "blood_pressure",
    )
    [view] = await app.plans.goals(info["patient"].patient_id)
    assert view.actions[0].id == action
    # 28 March 2027 is the last Sunday of March: 08:30 that morning is already summer time.
    assert view.actions[0].next_due_at == datetime(2027, 3, 28, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("call", "message"),
    [("empty goal", "needs words"), ("bad measurement", "unknown measurement"), ("no patient", "no patient")],
)
async def test_bad_input(app: App, clock: FrozenClock, call: str, message: str) -> None:
    info = await make_practice(app, clock, clinician=False)
    pid = info["patient"].patient_id
    with pytest.raises(PlanError, match=message):
        if call == "empty goal":
            await app.plans.add_goal(pid, "  ", "cli")
        elif call == "bad measurement":
            goal = await app.plans.add_goal(pid, "Gezonder eten", "cli")
            await app.plans.add_action(
                goal, "Groente", Schedule("daily", time(18), date(2026, 11, 23)), "cli", "mood"
            )
        else:
            await app.plans.add_goal(999, "x", "cli")


async def test_plan_cli(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_PATH": str(tmp_path / "cli.sqlite3")}

    async def run(*args: str) -> tuple[int, str, str]:
        return await run_cli(*args, cwd=tmp_path, env=env)

    assert (await run("practice", "add", "De Linde"))[0] == 0
    assert (await run("invite", "patient", "--practice", "1", "--consult", next_week_consult()))[0] == 0
    assert (await run("plan", "goal", "--patient", "1", "--text", "Weer fietsen"))[1].strip() == "goal 1"
    code, out, _ = await run(
        "plan",
        "action",
        "--goal",
        "1",
        "--what",
        "Wandelen",
        "--schedule",
        "weekdays",
        "--days",
        "ma,wo,vr",
        "--at",
        "10:00",
    )
    assert (code, out.strip()) == (0, "action 1")
    code, out, _ = await run("plan", "action", "--goal", "1", "--what", "Meten", "--measure", "weight")
    assert (code, out.strip()) == (0, "action 2")
    assert (await run("plan", "end-action", "--action", "2"))[1].strip() == "action 2 ended"
    code, out, _ = await run("plan", "show", "--patient", "1", "--history")
    assert "goal 1: Weer fietsen" in out and "action 1: Wandelen [weekdays 10:00]" in out
    assert "action 2 (ended): Meten" in out
    code, _, err = await run(
        "plan", "action", "--goal", "1", "--what", "x", "--schedule", "weekdays", "--days", "xx"
    )
    assert code != 0 and Catalog().t("bad.schedule_days") in err
    code, _, err = await run("plan", "goal", "--patient", "7", "--text", "x")
    assert code == 1 and "no patient with id 7" in err


async def test_plan_texts_and_names_have_a_sensible_maximum(app: App, clock: FrozenClock) -> None:
    """A goal or action is said back and sent in reminders; a 900 KB action is refused with a
    clear message (Telegram would refuse the reminder), in the CLI, the web app and the chat."""
    from bot.services.invites import InviteError
    from bot.services.plans import MAX_PLAN_TEXT

    info = await make_practice(app, clock)
    patient_id = info["patient"].patient_id
    with pytest.raises(PlanError, match="at most 300"):
        await app.plans.add_goal(patient_id, "x" * (MAX_PLAN_TEXT + 1), "poh")
    goal = await app.plans.add_goal(patient_id, "Elke dag wandelen", "poh")
    with pytest.raises(PlanError, match="at most 300"):
        await app.plans.add_action(goal, "y" * 900_000, Schedule("daily", time(9), clock.now().date()), "poh")
    with pytest.raises(InviteError, match="at most 100"):
        await app.invites.invite_patient(info["practice_id"], info["consult_at"], name="N" * 101)
