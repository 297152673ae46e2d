"""A direct answer Telegram holds back (429 with a long "retry after", as in a burst of taps
after a reminder round) is not dropped: it goes through the outbox and arrives later, in order."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FrozenClock
from bot.storage.models import OutboxKind
from bot.testing.fake_telegram import FakeTelegram
from tests.catalog import asks, label, says
from tests.conftest import DIMS, Harness
from tests.test_dispatcher import PATIENT, conversation, setup_people


async def test_a_held_back_answer_arrives_through_the_outbox(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    before = len(core.to_chat(PATIENT))
    core.held_back[PATIENT] = 30
    await harness.say(PATIENT, "Mijn kleinkinderen")
    assert len(core.to_chat(PATIENT)) == before  # nothing could go out
    assert (await conversation(harness.app))["answers"]["what_matters"] == "Mijn kleinkinderen"
    rows = await harness.app.repo.outbox.rows(OutboxKind.REPLY)
    assert [r["status"] for r in rows] == ["pending"] and rows[0]["payload"]["seq"] is not None
    del core.held_back[PATIENT]
    clock.advance(timedelta(seconds=31))
    await harness.app.tick()
    await harness.pump()
    arrived = core.to_chat(PATIENT)[before:]
    assert len(arrived) == 1 and asks(f"{DIMS[0]}.score") in arrived[0].text
    assert arrived[0].buttons  # the score buttons came with it, and they work
    assert says("bad.error") not in arrived[0].text
    await harness.tap(PATIENT, "7")
    assert (await conversation(harness.app))["answers"][f"{DIMS[0]}.score"] == 7
