"""A forwarded message at a free-text question is kept, and the agenda says it was forwarded:
the words may be someone else's (a partner's message, a leaflet)."""

from __future__ import annotations

import time

from bot.clock import FrozenClock
from bot.testing.fake_telegram import FakeTelegram
from tests.catalog import asks, label, says
from tests.conftest import DIMS, Harness
from tests.test_dispatcher import PATIENT, conversation, setup_people

MARK = "(doorgestuurd bericht, misschien niet in eigen woorden)"


def forward(core: FakeTelegram, text: str) -> None:
    origin = {"type": "hidden_user", "date": int(time.time()) - 3600, "sender_user_name": "Iemand"}
    core.user_message(PATIENT, text=text, forward_origin=origin)


async def test_a_forwarded_answer_is_marked_in_the_agenda_until_typed_again(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    forward(core, "Vergeet je afspraak bij de tandarts niet")
    await harness.pump()
    assert asks(f"{DIMS[0]}.score") in core.last_to(PATIENT).text  # kept, and on to the next question
    conv = await conversation(harness.app)
    assert conv["answers"]["what_matters"] == "Vergeet je afspraak bij de tandarts niet"
    assert conv["answers"]["forwarded"] == ["what_matters"]
    agenda = await harness.app.agenda.text(1)
    assert agenda is not None and f'"Vergeet je afspraak bij de tandarts niet" {MARK}' in agenda

    await harness.say(PATIENT, "/terug")
    await harness.say(PATIENT, "Mijn kleinkinderen")  # typed by the patient: their own words
    conv = await conversation(harness.app)
    assert conv["answers"]["what_matters"] == "Mijn kleinkinderen" and "forwarded" not in conv["answers"]
    agenda = await harness.app.agenda.text(1)
    assert agenda is not None and MARK not in agenda


async def test_a_forwarded_number_at_a_score_question_is_read_as_usual(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, "Mijn kleinkinderen")
    forward(core, "7")
    await harness.pump()
    conv = await conversation(harness.app)
    assert conv["answers"][f"{DIMS[0]}.score"] == 7 and "forwarded" not in conv["answers"]
    forward(core, "ik wil niet meer leven")  # forwarded or not: the safety net reads it
    await harness.pump()
    assert says("safety.routes.crisis_113") in "\n".join(m.text for m in core.to_chat(PATIENT)[-3:])
