"""End to end: the real ``python -m bot`` processes against a fake Bot API over HTTP.

The practice is set up with the real CLI; the bot runs as ``python -m bot run`` with
TELEGRAM_API_URL pointing at a fake Telegram server on 127.0.0.1. Halfway through the
intake the bot is killed with SIGKILL at the worst moment (its answer is committed, the next
question is on its way, the update not yet confirmed); the patient answers while it is down;
after a restart they continue without repeating an answer and the POH gets the agenda.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.testing.fake_telegram import ApiError, FakeBotAPIServer, FakeTelegram
from bot.testing.process import BotProcess
from tests.catalog import CATALOG, asks, label, says, shows, theme
from tests.conftest import next_week_consult, run_cli, spoken_when

PATIENT = 734912345
POH = 512345678
DIMS = [d.id for d in CATALOG.dimensions]
DIM_NAMES = [d.name for d in CATALOG.dimensions]
SECRET_WORDS = "mijn kleinkinderen in Zeeland"

CONSULT = next_week_consult()  # a week from the day the suite runs


def bot_env(tmp_path: Path, core: FakeTelegram, server: FakeBotAPIServer) -> dict[str, str]:
    return {
        **os.environ,
        "BOT_TOKEN": core.token,
        "BOT_USERNAME": core.username,
        "TELEGRAM_API_URL": server.base_url,
        "DATABASE_PATH": str(tmp_path / "e2e.sqlite3"),
        "LOG_LEVEL": "INFO",
        "OUTBOX_INTERVAL_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }


async def cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    code, out, err = await run_cli(*args, cwd=cwd, env=env)
    assert code == 0, err
    return out


async def setup_practice(env: dict[str, str], cwd: Path, core: FakeTelegram) -> tuple[str, str]:
    """A practice, a POH invite and a patient invite, with the real CLI; returns both tokens."""
    assert "practice 1" in await cli(env, cwd, "practice", "add", "Huisartsenpraktijk De Linde")
    poh_link = await cli(env, cwd, "invite", "clinician", "--practice", "1", "--name", "Anna (POH)")
    patient_link = await cli(
        env,
        cwd,
        "invite",
        "patient",
        "--practice",
        "1",
        "--consult",
        CONSULT,
        "--name",
        "J. de Vries",
        "--read-aloud",
        "no",
        "--simple",
        "no",
    )
    token_re = re.compile(rf"https://t\.me/{core.username}\?start=([A-Za-z0-9_-]{{32}})")
    poh = token_re.search(poh_link)
    patient = token_re.search(patient_link)
    assert poh and patient
    return poh.group(1), patient.group(1)


async def test_intake_survives_sigkill_and_reaches_the_poh(
    tmp_path: Path, fake: tuple[FakeTelegram, FakeBotAPIServer]
) -> None:
    core, server = fake
    env = bot_env(tmp_path, core, server)
    poh_token, patient_token = await setup_practice(env, tmp_path, core)

    bot = BotProcess(env, tmp_path, tmp_path / "bot.log")
    await bot.start()
    try:
        core.user_sends(POH, f"/start {poh_token}")
        await core.wait_sent(POH, 1, timeout=30)  # includes the process start-up

        async def answer(action: Any) -> None:
            count = len(core.to_chat(PATIENT))
            action()
            await core.wait_sent(PATIENT, count + 1)

        def tap(label: str) -> Any:
            return lambda: core.user_taps(PATIENT, core.last_question(PATIENT), label)

        def say(text: str) -> Any:
            return lambda: core.user_sends(PATIENT, text)

        await answer(say(f"/start {patient_token}"))
        assert shows(core.last_to(PATIENT).text, "consent")
        await answer(tap(label("buttons.consent_yes")))
        await answer(say(f"Tijd met {SECRET_WORDS}"))
        for score in ("3", "8"):
            await answer(tap(score))
            if score == "3":
                await answer(tap(label("buttons.answer_yes")))
                core.user_taps(PATIENT, core.last_question(PATIENT), theme("pijn"))
                await answer(tap(label("buttons.done")))  # the theme toggle edits; Done asks on
                await answer(say("Mijn knie wil niet meer"))
            else:
                await answer(tap(label("buttons.answer_no")))
        await answer(tap("7"))  # Zingeving

        # Kill the bot the moment it sends the next question, before it hears back.
        fourth_score = asks(f"{DIMS[3]}.score")

        def kill_on_fourth(method: str, params: dict[str, Any]) -> ApiError | None:
            if method == "sendmessage" and fourth_score in str(params.get("text")):
                bot.kill()
                core.inject = None
            return None

        core.inject = kill_on_fourth
        count = len(core.to_chat(PATIENT))
        core.user_taps(PATIENT, core.last_question(PATIENT), label("buttons.answer_no"))  # Zingeving: no talk
        assert await bot.wait() == -signal.SIGKILL
        fourth = core.to_chat(PATIENT)[count:]
        assert len(fourth) == 1 and fourth_score in fourth[0].text

        # While the bot is down, the patient answers the question they see.
        core.user_taps(PATIENT, fourth[0], "6")
        before_restart = len(core.to_chat(PATIENT))
        await bot.start()
        await core.wait_for(
            lambda: any(asks(f"{DIMS[3]}.talk") in m.text for m in core.to_chat(PATIENT)[before_restart:]),
            timeout=30,
        )
        after = [m.text for m in core.to_chat(PATIENT)[before_restart:]]
        # Nothing already answered is asked again; at most the open question is shown once more.
        for name in DIM_NAMES[:3]:
            assert not any(name in text for text in after), after
        assert sum(fourth_score in text for text in after) <= 1

        await answer(tap(label("buttons.answer_yes")))  # the 4th wants to talk (6 is not low)
        for _ in DIM_NAMES[4:]:
            await answer(tap("9"))
            await answer(tap(label("buttons.answer_no")))
        await answer(say("de uitslag van mijn bloed\nmijn knie"))
        core.user_taps(PATIENT, core.last_question(PATIENT), "mijn knie")
        await core.wait_for(lambda: core.callback_answers and len(core.callback_answers) > 0)
        await answer(tap(label("buttons.done")))
        assert spoken_when(CONSULT) in core.last_to(PATIENT).text

        agenda_msgs = await core.wait_for(
            lambda: [m for m in core.to_chat(POH) if "Agenda voorgesprek" in m.text], timeout=20
        )
        agenda = agenda_msgs[0].text
        assert "1. mijn knie" in agenda
        assert f"{DIM_NAMES[0]}: 3 · wil bespreken · laag" in agenda
        assert f"{DIM_NAMES[3]}: 6 · wil bespreken" in agenda
        assert f"{DIM_NAMES[2]}: 7" in agenda and f"{DIM_NAMES[1]}: 8" in agenda
        assert SECRET_WORDS in agenda and "Mijn knie wil niet meer" in agenda
        assert "Vries" not in "".join(m.text for m in core.sent)
        assert core.errors == []  # Telegram's limits were respected throughout

        await bot.stop()
    finally:
        await bot.reap()

    with sqlite3.connect(tmp_path / "e2e.sqlite3") as db:
        answers = dict(db.execute("SELECT key, value_json FROM answers"))
        sent = db.execute("SELECT status FROM outbox WHERE kind = 'agenda'").fetchall()
        inbox = db.execute("SELECT status, payload_json FROM inbox").fetchall()
    assert answers["kwaliteit_van_leven.score"] == "6" and answers["zingeving.talk"] == "false"
    assert sent == [("sent",)]
    # Every update went through the inbox and was handled; no patient words are kept there.
    assert inbox and {status for status, _ in inbox} == {"handled"} and {p for _, p in inbox} == {"{}"}

    log = (tmp_path / "bot.log").read_text()
    assert "starts polling" in log
    assert "Traceback" not in log
    for private in (SECRET_WORDS, "knie", "Vries", str(PATIENT), str(POH), patient_token):
        assert private not in log, private


async def test_cli_help_and_errors(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_PATH": str(tmp_path / "cli.sqlite3")}
    for args in (
        ["--help"],
        ["run", "--help"],
        ["demo", "--help"],
        ["invite", "patient", "--help"],
        ["invite", "clinician", "--help"],
        ["practice", "add", "--help"],
        ["agenda", "--help"],
        ["web", "--help"],
        ["clinician", "add", "--help"],
        ["lint-content", "--help"],
        ["plan", "settings", "--help"],
        ["bench", "--help"],
    ):
        out = await cli(env, tmp_path, *args)
        assert "usage: python -m bot" in out
    args = ("invite", "patient", "--practice", "9", "--consult", next_week_consult())
    code, _, err = await run_cli(*args, cwd=tmp_path, env=env)
    assert code == 1 and "no practice with id 9" in err
    code, _, err = await run_cli("run", cwd=tmp_path, env={**env, "BOT_TOKEN": ""})
    assert code != 0 and "BOT_TOKEN is not set" in err


async def test_the_quick_benchmarks_run_and_print_their_figures(tmp_path: Path) -> None:
    """A benchmark that crashes is found here, not by the next person who needs its figures (no
    timing is asserted: the figures are for the closing notes)."""
    env = {**os.environ, "DATABASE_PATH": str(tmp_path / "bench.sqlite3")}
    code, out, err = await run_cli("bench", "nlp", "--repeat", "2", cwd=tmp_path, env=env)
    assert code == 0 and "ratio:" in out and "x (target <= 20x)" in out, err
    code, out, err = await run_cli("bench", "due", "--repeat", "2", cwd=tmp_path, env=env)
    assert code == 0 and out.strip(), err


@asynccontextmanager
async def consenting_patient(
    tmp_path: Path, fake: tuple[FakeTelegram, FakeBotAPIServer]
) -> AsyncIterator[FakeTelegram]:
    """The real bot process with a POH and a patient who has just said yes; stopped cleanly after."""
    core, server = fake
    env = bot_env(tmp_path, core, server)
    poh_token, patient_token = await setup_practice(env, tmp_path, core)
    bot = BotProcess(env, tmp_path, tmp_path / "bot.log")
    await bot.start()
    try:
        core.user_sends(POH, f"/start {poh_token}")
        await core.wait_sent(POH, 1, timeout=30)
        core.user_sends(PATIENT, f"/start {patient_token}")
        await core.wait_sent(PATIENT, 1)
        core.user_taps(PATIENT, core.last_question(PATIENT), label("buttons.consent_yes"))
        await core.wait_sent(PATIENT, 2)
        yield core
        assert core.errors == []
        await bot.stop()
    finally:
        await bot.reap()


async def poh_agenda(core: FakeTelegram) -> str:
    """The POH asks for the agenda in Telegram and opens the first patient."""
    core.user_sends(POH, "/agenda")
    await core.wait_for(lambda: core.last_to(POH).buttons)
    core.user_taps(POH, core.last_to(POH), "#1")
    agenda = await core.wait_for(lambda: [m for m in core.to_chat(POH) if "Agenda voorgesprek" in m.text])
    return agenda[0].text


async def test_crisis_path_end_to_end(tmp_path: Path, fake: tuple[FakeTelegram, FakeBotAPIServer]) -> None:
    """A patient writes about violence at home: the route comes at once, the POH is told."""
    async with consenting_patient(tmp_path, fake) as core:
        core.user_sends(PATIENT, "Dat mijn man me niet meer slaat")
        alert = await core.wait_for(lambda: [m for m in core.to_chat(POH) if "⚠️" in m.text])
        await core.wait_sent(PATIENT, 5)
        route, told, question = core.to_chat(PATIENT)[2:5]
        assert says("safety.routes.veilig_thuis") in route.text
        assert "0800-2000" in route.text and "112" in route.text
        assert says("safety.told_practice") in told.text and says("safety.continue") in question.text
        assert says("safety.flags.violence") in alert[0].text and "slaat" not in alert[0].text
        core.user_taps(PATIENT, question, label("buttons.go_on"))
        await core.wait_sent(PATIENT, 6)
        assert asks(f"{DIMS[0]}.score") in core.last_to(PATIENT).text
        agenda = await poh_agenda(core)
        flag, route = says("safety.flags.violence"), says("safety.route_names.veilig_thuis")
        assert f"⚠️ Rode vlag: {flag} (advies gegeven: {route})" in agenda
    log = (tmp_path / "bot.log").read_text()
    assert "red flag(s) violence" in log and "slaat" not in log and str(PATIENT) not in log


async def test_check_tier_end_to_end(tmp_path: Path, fake: tuple[FakeTelegram, FakeBotAPIServer]) -> None:
    """Risk words without a clear statement: one direct question over HTTP. "Nee" goes on and the
    agenda shows the question and the answer; a typed "ja" to the next one gives the route at once."""
    async with consenting_patient(tmp_path, fake) as core:
        core.user_sends(PATIENT, "Ik ben het leven zat")  # what matters: a check, no alarm
        await core.wait_sent(PATIENT, 3)
        question = core.last_to(PATIENT)
        yes_no = [label("buttons.check_yes"), label("buttons.check_no")]
        assert says("safety.checks.suicide") in question.text and [t for t, _ in question.buttons] == yes_no
        core.user_taps(PATIENT, question, label("buttons.check_no"))
        await core.wait_sent(PATIENT, 5)
        thanks, next_question = core.to_chat(PATIENT)[3:5]
        assert says("safety.check_thanks") in thanks.text and asks(f"{DIMS[0]}.score") in next_question.text
        poh_before = len(core.to_chat(POH))

        core.user_sends(PATIENT, "ik heb al een tijdje pillen gespaard")  # text where a button is expected
        await core.wait_sent(PATIENT, 6)
        assert says("safety.checks.suicide") in core.last_to(PATIENT).text
        core.user_sends(PATIENT, "ja")  # typed, not tapped
        alert = await core.wait_for(lambda: [m for m in core.to_chat(POH)[poh_before:] if "⚠️" in m.text])
        await core.wait_sent(PATIENT, 9)
        route, told, go_on = core.to_chat(PATIENT)[6:9]
        assert "113" in route.text and says("safety.told_practice") in told.text
        assert says("safety.continue") in go_on.text
        assert says("safety.flags.suicide") in alert[0].text and "gespaard" not in alert[0].text

        agenda = await poh_agenda(core)
        asked = f"Direct gevraagd naar: {says('safety.flags.suicide')} · antwoord:"
        assert f"{asked} {says('safety.check_answers.no')}" in agenda
        assert f"{asked} {says('safety.check_answers.yes')}" in agenda
        assert "leven zat" not in agenda.split("Direct gevraagd")[1].splitlines()[0]
    log = (tmp_path / "bot.log").read_text()
    assert "Traceback" not in log and "gespaard" not in log and "leven zat" not in log
    assert str(PATIENT) not in log


async def test_webhook_mode_stores_before_it_answers_and_checks_the_secret(
    tmp_path: Path, fake: tuple[FakeTelegram, FakeBotAPIServer]
) -> None:
    """`run --webhook`: Telegram (the fake) POSTs each update with the secret header; the bot
    answers 200 only after the update is in the inbox, refuses a wrong secret (401) and a body
    that is no update (400), and handles the updates as in long polling."""
    import socket

    import aiohttp

    core, server = fake
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    env = {
        **bot_env(tmp_path, core, server),
        "WEBHOOK_URL": url,
        "WEBHOOK_SECRET": "geheim_42",
        "WEBHOOK_PORT": str(port),
    }
    _, patient_token = await setup_practice(env, tmp_path, core)
    bot = BotProcess(env, tmp_path, tmp_path / "bot.log", ("bot", "run", "--webhook"))
    await bot.start()
    try:
        await core.wait_for(lambda: core.webhook is not None, timeout=30)
        core.user_sends(PATIENT, f"/start {patient_token}")
        await core.wait_sent(PATIENT, 1, timeout=20)
        core.user_taps(PATIENT, core.last_question(PATIENT), label("buttons.consent_yes"))
        await core.wait_sent(PATIENT, 2, timeout=20)
        async with aiohttp.ClientSession() as session:
            wrong = {"X-Telegram-Bot-Api-Secret-Token": "fout"}
            async with session.post(url, json={"update_id": 999}, headers=wrong) as response:
                assert response.status == 401
            right = {"X-Telegram-Bot-Api-Secret-Token": "geheim_42"}
            async with session.post(url, data=b"\xff not json", headers=right) as response:
                assert response.status == 400
        assert core.get_updates_calls == 0 and set(core.webhook_answers) == {200}
        await bot.stop()
    finally:
        await core.stop_webhook()
        await bot.reap()
    with sqlite3.connect(tmp_path / "e2e.sqlite3") as db:
        inbox = db.execute("SELECT status FROM inbox").fetchall()
    assert inbox == [("handled",), ("handled",)]
    log = (tmp_path / "bot.log").read_text()
    assert "webhook listening" in log and "Traceback" not in log and patient_token not in log


async def test_many_patients_and_a_sigkill_mid_run_lose_nothing_and_duplicate_nothing(
    tmp_path: Path, fake: tuple[FakeTelegram, FakeBotAPIServer]
) -> None:
    """Twenty patients do their intake at the same time; the bot is SIGKILLed when about a third
    of the answers are in, and restarted. Every agenda reaches the POH exactly once, every
    patient's answers are all stored, and each chat's messages stay in order."""
    import asyncio
    from datetime import timedelta

    from bot.app import build_app
    from bot.config import Settings
    from bot.testing.patients import SimulatedPatient

    core, server = fake
    env = bot_env(tmp_path, core, server)
    settings = Settings(_env_file=None, database_path=tmp_path / "e2e.sqlite3")  # type: ignore[call-arg]
    app = await build_app(settings)
    practice = await app.repo.practices.add("Huisartsenpraktijk De Linde", app.clock.now())
    poh = await app.invites.invite_clinician(practice, "Anna (POH)")
    when = app.clock.now() + timedelta(days=7)
    users = list(range(600_001, 600_021))
    tokens = {}
    for user in users:
        invite = await app.invites.invite_patient(practice, when, read_aloud=False, simple=False)
        tokens[user] = invite.token
    await app.close()

    bot = BotProcess(env, tmp_path, tmp_path / "bot.log")
    await bot.start()
    answers = 0
    killed = asyncio.Event()

    async def intake(user: int) -> None:
        nonlocal answers
        patient = SimulatedPatient(core, user)
        core.user_sends(user, f"/start {tokens[user]}")
        await patient.next_message(0)
        for _ in range(60):
            await patient.settle()
            if shows(core.to_chat(user)[-1].text, "closing"):
                return
            count = len(core.to_chat(user))
            patient.answer()
            answers += 1
            if answers == 120 and not killed.is_set():
                bot.kill()
                killed.set()
            await patient.next_message(count, timeout=60)
        raise AssertionError(f"patient {user} did not finish")

    try:
        core.user_sends(POH, f"/start {poh.token}")
        await core.wait_sent(POH, 1, timeout=30)

        async def restart() -> None:
            await killed.wait()
            assert await bot.wait() == -signal.SIGKILL
            await bot.start()

        await asyncio.gather(restart(), *(intake(u) for u in users))
        await core.wait_for(
            lambda: sum("Agenda voorgesprek" in m.text for m in core.to_chat(POH)) >= 20, timeout=60
        )
        await asyncio.sleep(2)  # anything duplicated would arrive now
        agendas = [m for m in core.to_chat(POH) if "Agenda voorgesprek" in m.text]
        assert len(agendas) == 20
        await bot.stop()
    finally:
        await bot.reap()
    with sqlite3.connect(tmp_path / "e2e.sqlite3") as db:
        done = db.execute("SELECT COUNT(*) FROM consults WHERE status = 'ready'").fetchone()[0]
        sent = db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'agenda' AND status = 'sent'").fetchone()[
            0
        ]
        pending = db.execute("SELECT COUNT(*) FROM inbox WHERE status = 'pending'").fetchone()[0]
        scores = db.execute(
            "SELECT consult_id, COUNT(*) FROM answers WHERE key LIKE '%.score' GROUP BY consult_id"
        ).fetchall()
    assert (done, sent, pending) == (20, 20, 0)
    assert len(scores) == 20 and {n for _, n in scores} == {6}  # no answer lost
