"""The in-memory store (bot/testing/memory.py) behaves as SQLite does, so a rule that passes in
tests/test_services_memory.py holds on the real store too: one day-to-day story through the same
services over a MemoryStore and over a SqliteStore, and every reply and every row compared."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bot.callbacks import ReminderOp
from bot.channels import Reply
from bot.clock import FrozenClock
from bot.storage.db import Database
from bot.storage.models import OutboxKind
from bot.storage.store import SqliteStore
from bot.testing.memory import MemoryStore
from scheduler.schedules import Schedule
from tests.test_services_memory import DAY, EVER, START, World, build, buttons, local, text

FAR = datetime(2100, 1, 1, tzinfo=UTC)


def seen(reply: Reply | None) -> Any:
    if reply is None:
        return None
    return (reply.chat_id, reply.toast, text(reply), [buttons(m) for m in reply.messages])


async def story(w: World) -> list[Any]:
    """Reminders answered every way, a measurement, a streak, a check, notices, a blocked patient,
    a changed plan, then erasure; what the services said and what the store holds after each step."""
    out: list[Any] = []
    repo = w.store

    async def step(reply: Reply | None) -> None:
        out.append(seen(reply))
        out.append(
            (await w.all_reminders(), await repo.reminders.awaiting(w.patient_id), await repo.outbox.rows())
        )

    _, walk = await w.plan()
    await w.plan("Bloeddruk meten", "09:00", measurement="blood_pressure")
    patient = await w.patient()
    [monday] = await w.due(local(DAY, 14))
    await step(await w.tap(monday, ReminderOp.DONE, update=1))
    await step(await w.tap(monday, ReminderOp.DONE, update=2))  # answered: a toast
    [pressure] = await w.due(local(DAY + timedelta(days=1), 9))
    await step(await w.tap(pressure, ReminderOp.DONE))
    await step(await w.reminders.text(patient, "80/130", None))  # the wrong way round: asked again
    [tuesday] = await w.due(local(DAY + timedelta(days=1), 14))
    await step(await w.tap(tuesday, ReminderOp.FAIL, update=3))  # no more waiting for the value
    await step(await w.tap(tuesday, ReminderOp.BARRIER, "complaints"))
    await step(await w.reminders.text(patient, "Mijn knie deed zeer", 4))
    [pressure] = await w.due(local(DAY + timedelta(days=2), 9))
    await step(await w.tap(pressure, ReminderOp.DONE))
    await step(await w.reminders.text(patient, "195 op 100", None))  # above the limit: a signal
    [wednesday] = await w.due(local(DAY + timedelta(days=2), 14))
    await step(await w.tap(wednesday, ReminderOp.LATER))
    await step(await w.tap(wednesday, ReminderOp.SNOOZE, "1h"))
    w.clock.set(local(DAY + timedelta(days=2), 15))
    await step(await w.tap(wednesday, ReminderOp.FAIL))
    thursday = await w.due(local(DAY + timedelta(days=3), 14))  # the 09:00 measurement: missed
    await step(await w.tap(thursday[-1], ReminderOp.FAIL))  # three not done after a done: a signal
    question = await w.safety.ask(patient, w.consult, ["suicide"])
    out.append((question.text, buttons(question)))
    typed_yes = await w.safety.typed_answer(patient, "ja hoor")
    assert typed_yes is not None
    answered = await w.safety.answer(patient, typed_yes)
    assert answered is not None and answered[0] is not None
    out.append((answered[0].answer, text(answered[1])))
    renderers = {
        OutboxKind.REMINDER: w.reminders.render,
        OutboxKind.SIGNAL: w.reminders.render_signal,
        OutboxKind.ALERT: w.safety.render_alert,
        OutboxKind.BLOCKED: w.reminders.render_blocked,
        OutboxKind.REJECTED: w.reminders.render_rejected,
    }
    due = await repo.outbox.due(FAR)
    first_reminder = next(i for i in due if i.kind == OutboxKind.REMINDER)
    await w.reminders.delivery_rejected(first_reminder)
    await w.reminders.patient_blocked(first_reminder)
    w.clock.set(local(DAY + timedelta(days=3), 14, 30))
    due = await repo.outbox.due(FAR)
    out.append([(asdict(i), text(await renderers[i.kind](i) or [])) for i in due])  # type: ignore[index]
    await w.plans.change_action(walk, "patient", schedule=Schedule("daily", time(18, 0), DAY))
    out.append(await dump(w))
    await repo.patients.erase(w.patient_id, w.clock.now())
    out.append(await dump(w))
    return out


async def dump(w: World) -> dict[str, Any]:
    repo = w.store
    goals = [dict(g) for g in await repo.plans.goals(w.patient_id)]
    return {
        "patient": await repo.patients.get(w.patient_id),
        "consults": await repo.consults.of_patient(w.patient_id),
        "reminders": await repo.reminders.of_patient(w.patient_id, *EVER),
        "awaiting": await repo.reminders.awaiting(w.patient_id),
        "outbox": await repo.outbox.rows(),
        "due": await repo.outbox.due(FAR),
        "checks": await repo.safety.checks(w.consult),
        "flags": await repo.safety.flags(w.consult),
        "goals": goals,
        "actions": [dict(a) for g in goals for a in await repo.plans.actions(g["id"])],
        "due_actions": await repo.plans.due_actions(FAR, 100),
        "recipients": await repo.clinicians.agenda_recipients(w.practice, None),
        "processed": [await repo.updates.is_processed(u) for u in (1, 2, 3, 4, 5)],
        "signals": [r["payload"] for r in await repo.outbox.rows(OutboxKind.SIGNAL)],
    }


async def test_the_memory_store_tells_the_same_story_as_sqlite(tmp_path: Path) -> None:
    memory = await story(await build(FrozenClock(START), MemoryStore()))
    clock = FrozenClock(START)
    db = await Database.open(tmp_path / "contract.sqlite3")
    try:
        sqlite = await story(await build(clock, SqliteStore(db, clock)))
    finally:
        await db.close()
    assert len(memory) == len(sqlite)
    for step, (mine, real) in enumerate(zip(memory, sqlite, strict=True)):
        assert mine == real, f"part {step} differs"
    before, after = memory[-2], memory[-1]
    assert before["reminders"] and before["outbox"] and before["checks"]  # the story did happen
    assert {s["rule"] for s in before["signals"]} == {"above", "not_done"}
    assert before["processed"] == [True, True, True, True, False]
    assert after["reminders"] == [] and after["goals"] == [] and after["patient"].status == "erased"
