"""Dispatcher tests: a real aiogram Dispatcher and our routers, fed with Telegram updates.

The only fake is the Telegram side (an in-process Bot API core); storage is a real SQLite file.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.app import App, build_app
from bot.clock import FrozenClock
from bot.flows.model import OutMessage
from bot.storage.models import OutboxItem
from bot.telegram.runner import resume_after_restart
from bot.testing.fake_telegram import FakeTelegram
from tests.catalog import CATALOG, asks, dimension, label, says, shows, theme
from tests.conftest import DIMS, Harness, make_practice

PATIENT = 7001
POH = 5001
STRANGER = 9009


async def setup_people(harness: Harness, clock: FrozenClock) -> dict[str, Any]:
    info = await make_practice(harness.app, clock)
    await harness.say(POH, f"/start {info['clinician'].token}")
    await harness.say(PATIENT, f"/start {info['patient'].token}")
    return info


async def conversation(app: App) -> dict[str, Any]:
    patient = await app.repo.patients.by_telegram(PATIENT)
    assert patient is not None
    conv = await app.repo.conversations.get(patient.id)
    assert conv is not None
    return {"seq": conv.seq, "step": conv.state["step"], "answers": conv.state["answers"]}


async def complete_intake(h: Harness) -> None:
    await h.tap(PATIENT, label("buttons.consent_yes"))
    await h.say(PATIENT, "Mijn tuin en mijn kleinkinderen")
    for dim in DIMS:
        low = dim == "lichaamsfuncties"
        await h.tap(PATIENT, "3" if low else "8")
        talk = dim in ("lichaamsfuncties", "meedoen")
        await h.tap(PATIENT, label("buttons.answer_yes") if talk else label("buttons.answer_no"))
        if low:
            await h.tap(PATIENT, theme("pijn"))
            await h.tap(PATIENT, theme("slapen"))
            await h.tap(PATIENT, label("buttons.done"))
            await h.say(PATIENT, "Mijn rug speelt op bij het traplopen")
    await h.say(PATIENT, "de nieuwe pillen\nmijn rug")
    await h.tap(PATIENT, "mijn rug")
    await h.tap(PATIENT, dimension("meedoen"))
    await h.tap(PATIENT, label("buttons.done"))


async def test_unknown_user_gets_kind_message_and_no_data(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await make_practice(harness.app, clock)
    await harness.say(STRANGER, "/start")
    await harness.say(STRANGER, "hallo, wat is mijn afspraak?")
    core.user_message(
        STRANGER,
        sticker={
            "file_id": "s",
            "file_unique_id": "s",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        },
    )
    await harness.pump()
    texts = [m.text for m in core.to_chat(STRANGER)]
    assert len(texts) == 2  # /start, and one note for the rest: a stranger is answered once a while
    assert all(says("unknown_user") in t for t in texts)
    assert not any("Linde" in t or "december" in t for t in texts)


async def test_a_stranger_flood_costs_one_reply_but_danger_is_always_answered(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await make_practice(harness.app, clock)
    for n in range(100):
        core.user_sends(STRANGER, f"spam {n}")
    await harness.pump()
    assert len(core.to_chat(STRANGER)) == 1
    await harness.say(STRANGER, "ik wil dood")  # the route, even in the quiet period
    assert "113" in core.to_chat(STRANGER)[-2].text + core.to_chat(STRANGER)[-1].text
    clock.advance(timedelta(minutes=11))
    await harness.say(STRANGER, "hallo?")
    assert says("unknown_user") in core.last_to(STRANGER).text


async def test_invalid_and_reused_tokens(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    info = await make_practice(harness.app, clock)
    await harness.say(STRANGER, "/start bogus-token")
    assert says("invalid_token") in core.last_to(STRANGER).text
    await harness.say(PATIENT, f"/start {info['patient'].token}")
    assert shows(core.last_to(PATIENT).text, "consent")
    await harness.say(STRANGER, f"/start {info['patient'].token}")  # a second person with the same link
    assert says("invalid_token") in core.last_to(STRANGER).text


async def test_expired_token(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    info = await make_practice(harness.app, clock)
    clock.advance(harness.app.invites.ttl)
    await harness.say(PATIENT, f"/start {info['patient'].token}")
    assert says("invalid_token") in core.last_to(PATIENT).text


async def test_full_intake_reaches_the_poh(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    info = await setup_people(harness, clock)
    assert says("clinician.welcome", practice="Huisartsenpraktijk De Linde") in core.last_to(POH).text
    await complete_intake(harness)
    closing = core.last_to(PATIENT).text
    assert says("closing", when=CATALOG.format_when(info["consult_at"])) in closing
    agenda = "\n".join(m.text for m in core.to_chat(POH)[1:])
    assert says("clinician.new_agenda", id=1) in agenda
    second, first_score = f"2. {dimension('meedoen', emoji=True)}", f"{dimension('lichaamsfuncties')}: 3"
    assert agenda.index("1. mijn rug") < agenda.index(second) < agenda.index(first_score)
    assert f"Thema's: {theme('pijn')}, {theme('slapen')}" in agenda
    assert '"Mijn rug speelt op bij het traplopen"' in agenda
    assert "Mijn tuin en mijn kleinkinderen" in agenda
    # The display name is for the POH in the CLI only: never through Telegram.
    assert not any("Vries" in m.text for m in core.sent)
    assert core.errors == []  # nothing Telegram would have refused
    rows = await harness.app.repo.outbox.rows("agenda")
    assert [r["status"] for r in rows] == ["sent"]
    consents = await harness.app.repo.consents.of_patient(
        (await harness.app.repo.patients.by_telegram(PATIENT)).id
    )
    assert consents[0]["given"] == 1 and consents[0]["version"].startswith("consent-")


async def test_answered_question_loses_its_buttons(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    consent = core.last_question(PATIENT)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    assert consent.reply_markup is None
    assert core.callback_answers  # every tap is answered


BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    ("text", {"text": "geen idee"}, says("bad.use_buttons")),
    ("number out of range", {"text": "42"}, says("bad.scale_range", min=0, max=10)),
    ("emoji only", {"text": "👍👍"}, says("bad.use_buttons")),
    ("huge text", {"text": "x" * 4096}, says("bad.use_buttons")),
    (
        "sticker",
        {
            "sticker": {
                "file_id": "s",
                "file_unique_id": "s",
                "type": "regular",
                "width": 1,
                "height": 1,
                "is_animated": False,
                "is_video": False,
            }
        },
        says("bad.media"),
    ),
    (
        "photo",
        {
            "photo": [{"file_id": "p", "file_unique_id": "p", "width": 10, "height": 10}],
            "caption": "mijn knie",
        },
        says("bad.media"),
    ),
    (
        "document",
        {"document": {"file_id": "d", "file_unique_id": "d", "file_name": "brief.pdf"}},
        says("bad.media"),
    ),
    ("location", {"location": {"latitude": 52.09, "longitude": 5.12}}, says("bad.media")),
    (
        "voice",
        {"voice": {"file_id": "v", "file_unique_id": "v", "duration": 4}},
        says("bad.voice"),
    ),
    ("unknown command", {"text": "/foo"}, says("bad.unknown_command")),
]


@pytest.mark.parametrize(("name", "content", "expected"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
async def test_bad_input_at_a_button_step(
    harness: Harness,
    core: FakeTelegram,
    clock: FrozenClock,
    name: str,
    content: dict[str, Any],
    expected: str,
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.tap(PATIENT, label("buttons.skip"))
    before = await conversation(harness.app)
    count = len(core.to_chat(PATIENT))
    core.user_message(PATIENT, **content)
    await harness.pump()
    after = await conversation(harness.app)
    assert after == before
    new = core.to_chat(PATIENT)[count:]
    assert len(new) == 2, name
    assert expected in new[0].text
    assert asks(f"{DIMS[0]}.score") in new[1].text and new[1].buttons  # the question again
    assert core.errors == []


async def test_free_text_bad_inputs(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    before = await conversation(harness.app)
    await harness.say(PATIENT, "🙂🙂")
    await harness.say(PATIENT, "woord " * 600)  # 3600 characters: over our limit, within Telegram's
    assert await conversation(harness.app) == before
    texts = [m.text for m in core.to_chat(PATIENT)[-4:]]
    assert says("bad.text_unclear") in texts[0] and shows(texts[2], "bad.text_too_long")


async def test_edited_message_is_explained_not_applied(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, "Mijn familie")
    before = await conversation(harness.app)
    core.user_edits(PATIENT, message_id=1, text="Mijn werk")
    await harness.pump()
    assert await conversation(harness.app) == before
    assert before["answers"]["what_matters"] == "Mijn familie"
    assert says("bad.edited") in core.to_chat(PATIENT)[-2].text


async def test_commands_mid_flow(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.tap(PATIENT, label("buttons.skip"))
    await harness.tap(PATIENT, "6")
    state = await conversation(harness.app)
    await harness.say(PATIENT, "/help")
    assert says("help") in core.to_chat(PATIENT)[-2].text
    assert asks(f"{DIMS[0]}.talk") in core.last_to(PATIENT).text
    assert await conversation(harness.app) == state
    await harness.say(PATIENT, "/terug")
    assert (await conversation(harness.app))["step"] == "lichaamsfuncties.score"
    await harness.say(PATIENT, "/start")
    assert says("start_in_progress") in core.to_chat(PATIENT)[-2].text
    await harness.say(PATIENT, "/pauze")
    assert says("pause") in core.last_to(PATIENT).text
    await harness.say(PATIENT, "/verder")
    assert says("resume") in core.to_chat(PATIENT)[-2].text
    await harness.say(PATIENT, "/pauze")
    await harness.say(PATIENT, "7")  # any answer after a pause simply continues
    conv = await conversation(harness.app)
    assert conv["answers"]["lichaamsfuncties.score"] == 7 and conv["step"] == "lichaamsfuncties.talk"


async def test_old_button_and_double_tap(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.tap(PATIENT, label("buttons.skip"))
    score_question = core.last_question(PATIENT)
    old_nine = dict(score_question.buttons)["9"]  # kept: a second phone may still show it
    core.user_taps(PATIENT, score_question, "4")
    core.user_taps(PATIENT, score_question, "4")  # a double tap arrives right after
    count = len(core.to_chat(PATIENT))
    await harness.pump()
    conv = await conversation(harness.app)
    assert conv["answers"]["lichaamsfuncties.score"] == 4 and conv["step"] == "lichaamsfuncties.talk"
    assert len(core.to_chat(PATIENT)) == count + 1  # one new question, no noise for the double tap
    assert core.callback_answers[-1].get("text") == says("toast.already")
    assert score_question.reply_markup is None  # the bot took the buttons away
    core.user_taps(PATIENT, score_question, data=old_nine)  # an old button, much later
    await harness.pump()
    assert (await conversation(harness.app))["answers"]["lichaamsfuncties.score"] == 4
    assert says("bad.old_button") in core.to_chat(PATIENT)[-2].text


async def test_malformed_callback_data(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    await setup_people(harness, clock)
    before = await conversation(harness.app)
    core.user_taps(PATIENT, core.last_question(PATIENT), data="q:notanumber")
    core.user_taps(PATIENT, core.last_question(PATIENT), data="something-else")
    await harness.pump()
    assert await conversation(harness.app) == before
    assert says("bad.old_button") in core.to_chat(PATIENT)[-2].text


async def test_redelivered_update_is_applied_once(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    core.user_sends(PATIENT, "Gezond blijven")
    raw = core.pending[0]
    await harness.pump()
    await harness.feed(raw)  # Telegram delivers it again after a crash
    conv = await conversation(harness.app)
    assert conv["step"] == "lichaamsfuncties.score"  # not applied to the next question
    assert conv["answers"]["what_matters"] == "Gezond blijven"


async def test_restart_resumes_exactly_where_they_were(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, settings: Any
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, "Mijn hond")
    await harness.tap(PATIENT, "5")
    # Simulate a crash after the answer was committed but before the next question was shown.
    patient = await harness.app.repo.patients.by_telegram(PATIENT)
    await harness.app.db.execute(
        "UPDATE conversations SET prompted_seq = 0 WHERE patient_id = ?", (patient.id,)
    )
    await harness.app.close()

    app2 = await build_app(settings, clock)
    try:
        h2 = Harness(app2, core)
        count = len(core.to_chat(PATIENT))
        await resume_after_restart(app2, h2.responder)
        resent = core.to_chat(PATIENT)[count:]
        assert len(resent) == 1 and asks(f"{DIMS[0]}.talk") in resent[0].text
        await resume_after_restart(app2, h2.responder)  # a second restart: nothing again
        assert len(core.to_chat(PATIENT)) == count + 1
        await h2.tap(PATIENT, label("buttons.answer_yes"))
        conv = await conversation(app2)
        assert (
            conv["answers"]["lichaamsfuncties.score"] == 5 and conv["answers"]["what_matters"] == "Mijn hond"
        )
        assert conv["step"] == "lichaamsfuncties.hard"
    finally:
        await app2.close()


async def test_stop_and_start_again(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, "/stop")
    assert says("stop") in core.last_to(PATIENT).text
    await harness.say(PATIENT, "hallo")
    assert says("stopped") in core.last_to(PATIENT).text
    await harness.say(PATIENT, "/start")
    assert asks("what_matters") in core.last_to(PATIENT).text


async def test_declined_consent_then_start(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_no"))
    assert says("consent_declined") in core.last_to(PATIENT).text
    await harness.say(PATIENT, "toch wel")
    assert says("consent_declined") in core.last_to(PATIENT).text
    await harness.say(POH, "/agenda")
    assert says("clinician.status.declined") in core.last_to(POH).text
    await harness.say(PATIENT, "/start")
    assert shows(core.last_to(PATIENT).text, "consent")


async def test_erase_after_confirmation(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    info = await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, "Mijn geheime antwoord")
    await harness.say(PATIENT, "/wis")
    assert says("erase_confirm") in core.last_to(PATIENT).text
    await harness.tap(PATIENT, label("buttons.erase_no"))
    assert (await conversation(harness.app))["answers"]["what_matters"] == "Mijn geheime antwoord"
    await harness.say(PATIENT, "/wis")
    await harness.tap(PATIENT, label("buttons.erase_yes"))
    assert says("erase_done") in core.last_to(PATIENT).text
    consult_id = info["patient"].consult_id
    assert await harness.app.repo.answers.of_consult(consult_id) == {}
    assert await harness.app.repo.patients.by_telegram(PATIENT) is None
    patient = await harness.app.repo.patients.get(info["patient"].patient_id)
    assert patient.display_name is None and patient.telegram_user_id is None and patient.status == "erased"
    await harness.say(PATIENT, "hallo?")
    assert says("unknown_user") in core.last_to(PATIENT).text
    await harness.say(POH, "/agenda")
    assert says("clinician.status.erased") in core.last_to(POH).text
    text = await harness.app.agenda.text(consult_id, include_name=True)
    assert "geheime" not in text and "gewist" in text


async def test_poh_agenda_list_and_open(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    info = await setup_people(harness, clock)

    def line(consult: int, status: str) -> str:
        when = CATALOG.format_when(info["consult_at"])
        return says("clinician.list_line", id=consult, when=when, status=says(f"clinician.status.{status}"))

    await harness.say(POH, "/agenda")
    listing = core.last_to(POH)
    assert line(1, "invited") in listing.text
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(POH, "/agenda")
    assert line(1, "in_progress") in core.last_to(POH).text
    await harness.tap(POH, "#1")
    opened = core.last_to(POH).text
    assert "Agenda voorgesprek #1" in opened and f"Status: {says('clinician.status.in_progress')}" in opened
    await harness.say(POH, "iets anders")
    assert says("clinician.unknown_text") in core.last_to(POH).text
    core.user_taps(POH, listing, data="ag:999")
    await harness.pump()
    assert says("clinician.not_found") in core.last_to(POH).text


async def test_poh_cannot_open_other_practice(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    other = await harness.app.repo.practices.add("Andere praktijk", clock.now())
    invite = await harness.app.invites.invite_clinician(other, "Bob")
    await harness.say(5002, f"/start {invite.token}")
    core.user_taps(5002, core.last_to(POH), data="ag:1")  # a tap crafted for the other practice
    await harness.pump()
    assert says("clinician.not_found") in core.last_to(5002).text
    assert not any("Agenda voorgesprek" in m.text for m in core.to_chat(5002))


async def test_group_chat_is_refused_kindly(harness: Harness, core: FakeTelegram) -> None:
    core.user_message(PATIENT, chat_type="group", text="/start")
    await harness.pump()
    assert says("bad.group_chat") in core.sent[-1].text


async def test_long_agenda_is_split_under_the_limit(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    long = "Ik wil graag praten over " + " ".join(f"zorg{i}" for i in range(300))  # about 2000 chars
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, long[:1990])
    for _dim in DIMS:
        await harness.tap(PATIENT, "2")
        await harness.tap(PATIENT, label("buttons.answer_yes"))
        await harness.tap(PATIENT, theme("geld"))
        await harness.tap(PATIENT, label("buttons.done"))
        await harness.say(PATIENT, long[:1990])
    await harness.say(PATIENT, long[:1990])
    await harness.tap(PATIENT, label("buttons.done"))
    agenda = core.to_chat(POH)[1:]
    assert len(agenda) >= 4
    assert all(len(m.text) <= 4096 for m in agenda)
    assert sum(m.text.count("zorg299") for m in agenda) == 0  # cut at 1990 chars by us, not by Telegram
    assert sum(m.text.count("zorg1 ") for m in agenda) == 8  # every long answer arrived whole
    assert core.errors == []


async def test_unhandled_error_is_kind_and_logged_without_text(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    await setup_people(harness, clock)

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret patient words in an exception")

    harness.app.patients.handle = broken  # type: ignore[method-assign]
    await harness.say(PATIENT, "mijn geheime tekst")
    assert says("bad.error") in core.last_to(PATIENT).text
    assert "RuntimeError" in caplog.text
    assert "geheime" not in caplog.text and str(PATIENT) not in caplog.text


# -- safety: red flags in anything the patient writes ---------------------------------------------
async def test_crisis_answer_routes_at_once_and_alerts_the_poh(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    poh_before = len(core.to_chat(POH))
    await harness.say(PATIENT, "Eerlijk gezegd zie ik het niet meer zitten")
    texts = [m.text for m in core.to_chat(PATIENT)[-3:]]
    assert says("safety.routes.crisis_113") in texts[0]
    assert "113" in texts[0] and "0800-0113" in texts[0] and "112" in texts[0]
    assert says("safety.told_practice") in texts[1]
    question = core.last_question(PATIENT)
    assert says("safety.continue") in question.text
    conv = await conversation(harness.app)
    assert conv["answers"]["what_matters"] == "Eerlijk gezegd zie ik het niet meer zitten"  # nothing lost
    alert = core.to_chat(POH)[poh_before:]
    assert len(alert) == 1 and says("safety.flags.suicide") in alert[0].text and "113" in alert[0].text
    assert "zitten" not in alert[0].text  # never the patient's words in the notice
    await harness.say(PATIENT, "hallo?")  # while held, the continue question comes back
    assert says("safety.continue") in core.last_to(PATIENT).text
    await harness.tap(PATIENT, label("buttons.not_now"))
    assert says("safety.wait") in core.last_to(PATIENT).text
    await harness.tap(PATIENT, label("buttons.go_on"))
    assert asks(f"{DIMS[0]}.score") in core.last_to(PATIENT).text
    agenda = await harness.app.agenda.text(1)
    red_flag = f"⚠️ Rode vlag: {says('safety.flags.suicide')}"
    assert agenda.index(red_flag) < agenda.index("Wat de patiënt het eerst")


async def test_crisis_where_a_button_is_expected_and_under_negation(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.tap(PATIENT, label("buttons.skip"))
    await harness.say(PATIENT, "ik denk er niet aan om mezelf iets aan te doen hoor")
    assert "113" in core.to_chat(PATIENT)[-3].text
    assert (await conversation(harness.app))["step"] == "lichaamsfuncties.score"
    await harness.tap(PATIENT, label("buttons.go_on"))
    await harness.say(PATIENT, "ik ben doodmoe")  # an idiom: no alarm, just the buttons again
    assert says("bad.use_buttons") in core.to_chat(PATIENT)[-2].text
    core.user_edits(PATIENT, message_id=1, text="mijn man slaat me")  # an edit is read for safety too
    await harness.pump()
    assert says("safety.routes.veilig_thuis") in core.to_chat(PATIENT)[-3].text
    flags = await harness.app.repo.safety.flags(1)
    assert set(flags) == {"self_harm", "suicide", "violence"}  # "mezelf iets aandoen": both, both 113


async def test_crisis_from_a_stranger_gets_the_route(harness: Harness, core: FakeTelegram) -> None:
    await harness.say(STRANGER, "ik heb pijn op de borst en zweet")
    texts = [m.text for m in core.to_chat(STRANGER)]
    assert says("safety.routes.emergency_112") in texts[0] and says("unknown_user") in texts[1]
    assert says("safety.told_practice") not in "".join(texts)


async def test_crisis_words_after_a_command(harness: Harness, core: FakeTelegram, clock: FrozenClock) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, "/help ik wil dood")
    assert "113" in core.to_chat(PATIENT)[-3].text
    await harness.tap(PATIENT, label("buttons.go_on"))
    await harness.say(PATIENT, "/foo")
    assert says("bad.unknown_command") in core.to_chat(PATIENT)[-2].text


async def test_refused_rows_fail_once_tell_the_practice_and_never_hold_up_an_alert(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    """17 rows that Telegram refuses (400: far too long) are failed at once and never retried; the
    POH hears which kind of message did not go out (never its text); a red-flag alert for another
    patient that is queued after them still goes out in the same flush."""
    await setup_people(harness, clock)
    app, outbox = harness.app, harness.app.outbox
    assert outbox is not None
    patient = await app.repo.patients.by_telegram(PATIENT)
    assert patient is not None

    async def too_long(item: OutboxItem) -> list[OutMessage]:
        return [OutMessage("geheime tekst " * 1000)]

    outbox.register("reminder", too_long)
    for n in range(17):  # one chat each, so Telegram's pace per chat does not slow the test
        await app.repo.outbox.enqueue(
            "reminder", 8000 + n, {}, clock.now(), clock.now(), patient_id=patient.id
        )
    clock.advance(timedelta(seconds=1))
    await harness.say(PATIENT, "ik wil niet meer leven")  # queues the POH alert after the 17 rows
    await app.tick()
    await outbox.settle()
    rows = await app.repo.outbox.rows("reminder")
    assert [r["status"] for r in rows] == ["failed"] * 17 and {r["attempts"] for r in rows} == {1}
    to_poh = [m.text for m in core.to_chat(POH)]
    assert any(says("safety.flags.suicide") in t for t in to_poh)  # the alert went out
    notices = [t for t in to_poh if shows(t, "clinician.rejected")]
    assert len(notices) == 1 and "geheime" not in notices[0]
    assert says("clinician.outbox_kinds.reminder") in notices[0]
    await app.tick()
    assert len(core.errors) == 17  # refused once each, never tried again


async def test_a_tap_reads_the_patient_twice_and_commits_once(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    """Per update: the patient is read to know who writes and again under the patient's lock (the
    update's identity map serves every other read), and the answer, the conversation and the
    update's mark go in one transaction."""
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, "Mijn tuin en mijn kleinkinderen")
    statements: list[str] = []
    await harness.app.db.trace(statements.append)
    await harness.tap(PATIENT, "8")
    statements = list(statements)  # what the tap ran (the checks below read too)
    patient = await harness.app.repo.patients.by_telegram(PATIENT)
    consult = await harness.app.repo.consults.latest(patient.id)
    assert (await harness.app.repo.answers.of_consult(consult.id))[f"{DIMS[0]}.score"] == 8
    assert sum(s.startswith("SELECT * FROM patients") for s in statements) == 2
    assert sum(s == "BEGIN IMMEDIATE" for s in statements) == 1
    assert sum("INTO processed_updates" in s for s in statements) == 1
    assert len(statements) <= 15, statements


HUGE = "9" * 30  # more than SQLite's largest integer


async def test_odd_numbers_get_the_question_again_never_the_apology(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    """Superscript and other non-ASCII digits at a score, and numbers beyond SQLite's range in POH
    commands, agenda buttons, reminder and check taps: a kind answer, never the error apology."""
    t = harness.app.catalog.t
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, "Mijn tuin en mijn kleinkinderen")
    before = await conversation(harness.app)
    for odd in ("5²", "٣", "①", "7 ", HUGE, "-3"):
        await harness.say(PATIENT, odd)
    after = await conversation(harness.app)
    # "7 " is a score; the others are asked again and change nothing.
    assert after["answers"] == {**before["answers"], f"{DIMS[0]}.score": 7}
    for forged in (f"r:{HUGE}:d", f"sc:{HUGE}:yes", f"q:{HUGE}:5", f"vt:{HUGE}:yes"):
        core.user_taps(PATIENT, core.last_question(PATIENT), data=forged)
        await harness.pump()
    await harness.say(POH, f"/plan {HUGE}")
    assert core.last_to(POH).text == t("clinician.plan.usage_plan")
    await harness.say(POH, f"/luister {HUGE}")
    assert core.last_to(POH).text == t("clinician.voice_not_found")
    core.user_taps(POH, core.to_chat(POH)[-1], data=f"ag:{HUGE}")  # a forged agenda button
    await harness.pump()
    assert core.last_to(POH).text == t("clinician.not_found")
    apology = t("bad.error")
    assert not [m for m in core.sent if m.text == apology]
    assert core.errors == []


async def test_an_old_or_forged_erase_button_erases_nothing(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    """ "Ja, alles wissen" carries a signed moment: a tap after ten minutes, a forged or a bare
    ``wis:yes`` erases nothing and says to type /wis again; a fresh /wis still works."""
    t = harness.app.catalog.t
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, "Mijn geheime antwoord")
    await harness.say(PATIENT, "/wis")
    question = core.last_to(PATIENT)
    yes = next(data for label, data in question.buttons if data.startswith("wis:yes:"))
    clock.advance(timedelta(minutes=11))
    await harness.tap(PATIENT, label("buttons.erase_yes"))
    assert core.last_to(PATIENT).text == t("erase_expired")
    asked, signature = yes.removeprefix("wis:yes:").split(":")
    for forged in (
        "wis:yes",
        "wis:yes:",
        f"wis:yes:{int(asked) + 660}:{signature}",
        f"wis:yes:{asked}:{'0' * 16}",
        "wis:yes:٣:x",
        f"wis:yes:{asked}:é",
        f"wis:yes:{'9' * 40}:{signature}",
    ):
        core.user_taps(PATIENT, question, data=forged)
        await harness.pump()
        assert core.last_to(PATIENT).text == t("erase_expired"), forged
    assert (await conversation(harness.app))["answers"]["what_matters"] == "Mijn geheime antwoord"
    await harness.say(PATIENT, "/wis")
    fresh = core.last_to(PATIENT)
    asked = next(d for _, d in fresh.buttons if d.startswith("wis:yes:")).split(":")[2]
    for forged in (f"wis:yes:{asked}:é", f"wis:yes:{asked}:{'0' * 16}"):  # a fresh moment, a wrong signature
        core.user_taps(PATIENT, fresh, data=forged)
        await harness.pump()
        assert core.last_to(PATIENT).text == t("erase_expired"), forged
    await harness.say(PATIENT, "/wis")
    await harness.tap(PATIENT, label("buttons.erase_yes"))
    assert core.last_to(PATIENT).text == t("erase_done")
    assert await harness.app.repo.patients.by_telegram(PATIENT) is None
