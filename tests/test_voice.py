"""Low literacy and voice: read aloud (real espeak-ng + opusenc), replay, simple mode, voice answers
with and without speech-to-text (a fake backend stands in for faster-whisper), through the real
Dispatcher."""

from __future__ import annotations

import struct
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.clock import FrozenClock
from bot.testing.fake_telegram import FakeTelegram
from bot.voice.tts import EspeakTTS, VoiceCache, is_voice_note, speakable
from tests.catalog import asks, face, label, option, says, shows
from tests.conftest import DIMS, Harness, make_practice
from tests.test_dispatcher import PATIENT, POH

pytestmark = pytest.mark.usefixtures("harness")


def opus_head(audio: bytes) -> dict[str, int]:
    """Parse the OGG container's first page and its OpusHead packet."""
    assert audio[:4] == b"OggS", "not an OGG container"
    segments = audio[26]
    start = 27 + segments
    packet = audio[start : start + 19]
    assert packet[:8] == b"OpusHead", "the first stream is not Opus"
    version, channels, _pre_skip, rate = struct.unpack("<BBHI", packet[8:16])
    return {"version": version, "channels": channels, "rate": rate}


@pytest.fixture(scope="module")
def spoken() -> bytes:
    """A real voice note, as a patient would send one."""
    import asyncio

    return asyncio.run(EspeakTTS().synthesise("Mijn rug doet pijn als ik de trap op loop"))


def cache_files(folder: Path) -> int:
    return len(list(folder.rglob("*.ogg")))


async def test_espeak_makes_a_valid_voice_note_and_the_cache_hits(tmp_path: Path) -> None:
    cache = VoiceCache(EspeakTTS(), tmp_path)
    first = await cache.audio("🔊 Welk cijfer geeft u dit nu? Tik op /help.")
    head = opus_head(first)
    assert head["version"] == 1 and head["channels"] == 1 and is_voice_note(first)
    again = await cache.audio("🔊 Welk cijfer geeft u dit nu? Tik op /help.")
    assert again == first and (cache.hits, cache.misses) == (1, 1)
    assert cache_files(tmp_path) == 1
    await cache.audio("Uw doel: weer naar de markt", private=True)  # the patient's words: never on disk
    assert cache_files(tmp_path) == 1
    assert speakable("✅ Gedaan! Tik op /stop") == "Gedaan! Tik op stop"


async def start(h: Harness, clock: FrozenClock, **prefs: Any) -> dict[str, Any]:
    info = await make_practice(h.app, clock)
    consult_at = datetime(2026, 12, 1, 14, 30, tzinfo=h.app.settings.zone)
    info["patient"] = await h.app.invites.invite_patient(info["practice_id"], consult_at, **prefs)
    await h.say(POH, f"/start {info['clinician'].token}")
    await h.say(PATIENT, f"/start {info['patient'].token}")
    return info


async def test_read_aloud_is_offered_spoken_and_can_be_replayed_and_switched_off(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await start(harness, clock)
    assert asks("read_aloud") in core.last_to(PATIENT).text
    assert len(core.voices_to(PATIENT)) == 1  # the question itself is spoken before the choice
    await harness.tap(PATIENT, option("intake", "read_aloud", "yes"))
    assert asks("simple_mode") in core.last_to(PATIENT).text
    voices = core.voices_to(PATIENT)
    assert len(voices) == 2 and is_voice_note(voices[-1].voice or b"")
    assert [b for b, _ in voices[-1].buttons] == [label("voice.replay")]
    core.user_taps(PATIENT, voices[-1], label("voice.replay"))
    await harness.pump()
    assert len(core.voices_to(PATIENT)) == 3 and core.voices_to(PATIENT)[-1].voice == voices[-1].voice
    await harness.tap(PATIENT, option("intake", "simple_mode", "no"))
    assert shows(core.last_to(PATIENT).text, "consent") and len(core.voices_to(PATIENT)) == 4
    await harness.say(PATIENT, "/voorlezen")
    assert says("read_aloud_off") in core.last_to(PATIENT).text
    count = len(core.voices_to(PATIENT))
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    assert len(core.voices_to(PATIENT)) == count  # off: text only


async def test_simple_mode_from_the_invite_shows_faces(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, app: App
) -> None:
    info = await start(harness, clock, simple=True, read_aloud=False)
    assert shows(core.last_to(PATIENT).text, "consent")  # both chosen already: no questions about them
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    assert core.last_to(PATIENT).text == asks("what_matters", simple=True)
    await harness.tap(PATIENT, label("buttons.skip"))
    await harness.tap(PATIENT, face(5))
    answers = await app.repo.answers.of_consult(info["patient"].consult_id)
    assert answers["lichaamsfuncties.score"] == 5 and answers["lichaamsfuncties.score_face"] == face(5)


async def test_voice_answer_kept_for_the_poh_without_speech_to_text(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, app: App, spoken: bytes
) -> None:
    info = await start(harness, clock, simple=False, read_aloud=False)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    core.user_sends_voice(PATIENT, spoken, duration=23)
    await harness.pump()
    assert asks(f"{DIMS[0]}.score") in core.last_to(PATIENT).text  # the conversation went on
    answers = await app.repo.answers.of_consult(info["patient"].consult_id)
    assert answers["what_matters"].startswith(says("voice.marker", duration="0:23", id=1))
    agenda = await app.agenda.text(info["patient"].consult_id)
    assert agenda is not None and says("voice.marker", duration="0:23", id=1) in agenda
    await harness.say(POH, "/luister 1")
    assert core.voices_to(POH)[-1].voice == spoken
    await harness.say(POH, "/luister 99")
    assert says("clinician.voice_not_found") in core.last_to(POH).text
    # Voice where a button is expected: kind, and the buttons again.
    core.user_sends_voice(PATIENT, spoken, duration=3)
    await harness.pump()
    said = [m.text for m in core.to_chat(PATIENT)[-2:]]
    assert says("bad.voice") in said[0] and asks(f"{DIMS[0]}.score") in said[1]
    # Erase takes the audio too.
    await harness.say(PATIENT, "/wis")
    await harness.tap(PATIENT, label("buttons.erase_yes"))
    assert await app.db.fetchall("SELECT id FROM voice_notes") == []


async def test_too_long_and_broken_voice(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, spoken: bytes
) -> None:
    await start(harness, clock, simple=False, read_aloud=False)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    core.user_sends_voice(PATIENT, spoken, duration=1000)
    await harness.pump()
    assert shows(core.to_chat(PATIENT)[-2].text, "voice.too_long")
    core.user_sends_voice(PATIENT, b"this is not audio", duration=4)
    await harness.pump()
    assert says("voice.broken") in core.to_chat(PATIENT)[-2].text
    assert asks("what_matters") in core.last_to(PATIENT).text  # still the same question


class FakeSTT:
    def __init__(self, text: str) -> None:
        self.text = text

    async def transcribe(self, audio: bytes) -> str:
        assert is_voice_note(audio)
        return self.text


async def test_transcript_is_confirmed_before_it_is_used(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, app: App, spoken: bytes
) -> None:
    info = await start(harness, clock, simple=False, read_aloud=False)
    app.voice_answers.stt = FakeSTT("Mijn kleinkinderen en mijn moestuin")
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    core.user_sends_voice(PATIENT, spoken, duration=5)
    await harness.pump()
    assert says("voice.heard", text="Mijn kleinkinderen en mijn moestuin") in core.last_to(PATIENT).text
    await harness.tap(PATIENT, label("voice.confirm_no"))
    assert says("voice.again") in core.to_chat(PATIENT)[-2].text
    assert "what_matters" not in await app.repo.answers.of_consult(info["patient"].consult_id)
    core.user_sends_voice(PATIENT, spoken, duration=5)
    await harness.pump()
    await harness.tap(PATIENT, label("voice.confirm_yes"))
    answers = await app.repo.answers.of_consult(info["patient"].consult_id)
    assert answers["what_matters"] == "Mijn kleinkinderen en mijn moestuin"


async def test_a_red_flag_in_a_transcript_is_acted_on_at_once(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, app: App, spoken: bytes
) -> None:
    await start(harness, clock, simple=False, read_aloud=False)
    app.voice_answers.stt = FakeSTT("ik wil er niet meer zijn")
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    core.user_sends_voice(PATIENT, spoken, duration=5)
    await harness.pump()
    assert any("113" in m.text for m in core.to_chat(PATIENT)[-3:])
    assert shows(core.last_to(POH).text, "clinician.alert")


async def test_reminders_are_read_aloud_and_a_note_can_be_spoken(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, app: App, spoken: bytes
) -> None:
    from scheduler.schedules import Schedule

    info = await start(harness, clock, simple=False, read_aloud=True)
    patient = info["patient"].patient_id
    goal = await app.plans.add_goal(patient, "Fitter worden", "cli")
    await app.plans.add_action(
        goal, "Tien minuten wandelen", Schedule("daily", time(14, 0), date(2026, 11, 23)), "cli"
    )
    before = len(core.voices_to(PATIENT))
    clock.set(datetime(2026, 11, 23, 14, 0, tzinfo=app.settings.zone))
    await app.tick()
    assert len(core.voices_to(PATIENT)) == before + 1  # the reminder, spoken
    reminder = next(
        m for m in reversed(core.to_chat(PATIENT)) if any(d.startswith("r:") for _, d in m.buttons)
    )
    core.user_taps(PATIENT, reminder, label("reminder.buttons.not_done"))
    await harness.pump()
    await harness.tap(PATIENT, label("reminder.barriers.forgot"))
    core.user_sends_voice(PATIENT, spoken, duration=7)
    await harness.pump()
    row = await app.db.fetchone("SELECT note FROM reminders")
    assert row is not None and row["note"] == says("voice.marker", duration="0:07", id=1)


async def test_a_spoken_plan_plays_the_patients_own_words_in_the_reminder(
    harness: Harness, core: FakeTelegram, clock: FrozenClock, app: App, spoken: bytes
) -> None:
    from tests.test_dispatcher import complete_intake

    await start(harness, clock, simple=False, read_aloud=False)
    await complete_intake(harness)
    await harness.say(PATIENT, "/plan")
    core.user_sends_voice(PATIENT, spoken, duration=4)  # the goal, spoken
    await harness.pump()
    core.user_sends_voice(PATIENT, spoken, duration=6)  # the action, spoken
    await harness.pump()
    await harness.tap(PATIENT, option("plan", "often", "daily"))
    await harness.tap(PATIENT, "15:00")
    await harness.tap(PATIENT, option("plan", "until", "2w"))
    await harness.tap(PATIENT, option("plan", "measure", "none"))
    core.user_sends_voice(PATIENT, spoken, duration=5)  # teach-back, spoken
    await harness.pump()
    spoken_action = says("voice.marker", duration="0:06", id=2)
    assert spoken_action in core.last_to(PATIENT).text  # the summary names the spoken action
    await harness.tap(PATIENT, label("buttons.plan_yes"))
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=app.settings.zone))
    await app.tick()
    assert shows(core.last_to(PATIENT).text, "reminder.action")
    assert core.voices_to(PATIENT)[-1].voice == spoken  # their own recording plays with it
