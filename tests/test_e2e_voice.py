"""End to end: a patient in simple mode who wants everything read aloud completes the intake with
the real ``python -m bot run`` over HTTP; every question also arrives as a valid OGG/Opus voice
note (sendVoice, multipart upload), and "🔊 Nog een keer" replays one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.testing.fake_telegram import FakeBotAPIServer, FakeTelegram
from bot.testing.process import BotProcess
from tests.catalog import asks, face, label, option, shows
from tests.conftest import next_week_consult
from tests.test_e2e import bot_env, cli
from tests.test_voice import opus_head

PATIENT = 734_555


async def test_simple_mode_with_read_aloud_over_http(
    tmp_path: Path, fake: tuple[FakeTelegram, FakeBotAPIServer]
) -> None:
    core, server = fake
    env = {**bot_env(tmp_path, core, server), "VOICE_CACHE_DIR": str(tmp_path / "voice")}
    await cli(env, tmp_path, "practice", "add", "Huisartsenpraktijk De Linde")
    link = await cli(
        env,
        tmp_path,
        "invite",
        "patient",
        "--practice",
        "1",
        "--consult",
        next_week_consult(),
        "--simple",
        "yes",
    )
    token = re.search(r"start=([A-Za-z0-9_-]{32})", link)
    assert token
    bot = BotProcess(env, tmp_path, tmp_path / "bot.log")
    await bot.start()
    try:

        async def answer(action: Any) -> None:
            texts, voices = len(core.to_chat(PATIENT)), len(core.voices_to(PATIENT))
            action()
            await core.wait_for(
                lambda: len(core.to_chat(PATIENT)) > texts and len(core.voices_to(PATIENT)) > voices,
                timeout=30,
            )

        def tap(label: str) -> Any:
            return lambda: core.user_taps(PATIENT, core.last_question(PATIENT), label)

        await answer(lambda: core.user_sends(PATIENT, f"/start {token[1]}"))
        assert asks("read_aloud") in core.last_to(PATIENT).text  # asked, and spoken, before the choice
        await answer(tap(option("intake", "read_aloud", "yes")))
        assert shows(core.last_to(PATIENT).text, "consent")  # simple mode was chosen on the invite
        await answer(tap(label("buttons.consent_yes")))
        await answer(tap(label("buttons.skip")))
        for _ in range(6):
            faces = [label for label, _ in core.last_question(PATIENT).buttons]
            assert faces[:5] == [face(score) for score in (1, 3, 5, 7, 9)]
            await answer(tap(face(7)))
            await answer(tap(label("buttons.answer_no")))
        await answer(tap(label("buttons.skip")))  # what to discuss; nothing to prioritise then
        assert shows(core.last_to(PATIENT).text, "closing")

        voices = core.voices_to(PATIENT)
        assert len(voices) >= 17
        for note in voices:
            head = opus_head(note.voice or b"")
            assert head["version"] == 1 and head["channels"] == 1
        replay = voices[-1]
        count = len(voices)
        core.user_taps(PATIENT, replay, label("voice.replay"))
        await core.wait_for(lambda: len(core.voices_to(PATIENT)) == count + 1, timeout=15)
        assert core.voices_to(PATIENT)[-1].voice == replay.voice
        uploads = [c for c in core.calls if c[0] == "sendvoice" and isinstance(c[1].get("voice"), bytes)]
        assert len(uploads) >= 17
    finally:
        bot.kill()
        await bot.wait()
    log = (tmp_path / "bot.log").read_text(encoding="utf-8")
    assert "Traceback" not in log
