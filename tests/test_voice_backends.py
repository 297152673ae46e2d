"""The voice backends without their programs: speech to text reads the patient's audio from memory
(a fake model stands in for faster-whisper) and never writes it to a file; Piper voices are
encoded at the sample rate their own model config gives (a fake ``.onnx.json``)."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.voice import tts as tts_module
from bot.voice.stt import WhisperSTT
from bot.voice.tts import PiperTTS, SynthesisError

AUDIO = b"OggS\x00\x02" + bytes(range(256)) * 8


class FakeSegment:
    def __init__(self, text: str) -> None:
        self.text = text


class FakeWhisper:
    """Records what ``transcribe`` got, as faster-whisper's WhisperModel would receive it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def transcribe(self, audio: Any, **options: Any) -> tuple[list[FakeSegment], dict[str, Any]]:
        self.calls.append((audio, options))
        data = audio.read()
        assert data == AUDIO
        return [FakeSegment(" Mijn rug "), FakeSegment("doet pijn. ")], {}


def no_temp_files(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("patient audio must not be written to a temporary file")


async def test_speech_to_text_reads_the_audio_from_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile", "mkstemp", "mktemp"):
        monkeypatch.setattr(tempfile, name, no_temp_files)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = FakeWhisper()
    stt = WhisperSTT(tmp_path / "model", model=model)
    assert await stt.transcribe(AUDIO) == "Mijn rug doet pijn."
    (audio, options), *_ = model.calls
    assert isinstance(audio, io.BytesIO) and audio.getvalue() == AUDIO
    assert options["language"] == "nl"
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - the test's own empty folder


def voice(folder: Path, config: Any, name: str = "nl_BE-nathalie-x_low.onnx") -> Path:
    model = folder / name
    model.write_bytes(b"onnx")
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        (folder / f"{name}.json").write_text(text, encoding="utf-8")
    return model


def test_piper_uses_the_sample_rate_of_the_model(tmp_path: Path) -> None:
    model = voice(tmp_path, {"audio": {"sample_rate": 16000, "quality": "x_low"}, "espeak": {"voice": "nl"}})
    piper = PiperTTS(model)
    assert piper.rate == 16000
    speak, encode = piper.commands()
    assert speak[:3] == ["piper", "--model", str(model)]
    assert encode[encode.index("--raw-rate") + 1] == "16000"
    assert encode[encode.index("--raw-chan") + 1] == "1"
    # The rate is part of the cache key: audio cached at the old, wrong speed is not played again.
    (tmp_path / "b").mkdir()
    other = voice(tmp_path / "b", {"audio": {"sample_rate": 22050}})
    assert PiperTTS(other).name != piper.name


def test_piper_22050_model_stays_22050(tmp_path: Path) -> None:
    _, encode = PiperTTS(voice(tmp_path, {"audio": {"sample_rate": 22050}})).commands()
    assert encode[encode.index("--raw-rate") + 1] == "22050"


@pytest.mark.parametrize(
    "config",
    [None, "{not json", {"audio": {}}, {"audio": {"sample_rate": "fast"}}, {"audio": {"sample_rate": 0}}],
)
def test_piper_without_a_usable_config_is_refused(tmp_path: Path, config: Any) -> None:
    with pytest.raises(SynthesisError, match=r"sample_rate|json"):
        PiperTTS(voice(tmp_path, config))


def test_read_aloud_is_off_when_the_piper_config_is_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.app import voice_cache

    monkeypatch.setattr("bot.app.shutil.which", lambda name: f"/usr/bin/{name}")
    settings = Settings(tts_backend="piper", piper_model=voice(tmp_path, None), voice_cache_dir=tmp_path)
    assert voice_cache(settings) is None
    assert "sample_rate" in caplog.text or ".onnx.json" in caplog.text
    good = voice(tmp_path, {"audio": {"sample_rate": 16000}}, "good.onnx")
    cache = voice_cache(Settings(tts_backend="piper", piper_model=good, voice_cache_dir=tmp_path))
    assert cache is not None and isinstance(cache.backend, tts_module.PiperTTS)
    assert cache.backend.rate == 16000
