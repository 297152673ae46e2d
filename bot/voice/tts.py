"""Text to speech, offline: espeak-ng's Dutch voice by default, a Piper model when configured.

Both produce Telegram voice notes (OGG container, Opus codec) through ``opusenc``. Audio of a
fixed text is cached on disk by the hash of backend + text; a private text (with the patient's
own words, dates or actions) is synthesised on demand and never written to disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

OGG_MAGIC = b"OggS"
OPUS_HEAD = b"OpusHead"


class SynthesisError(RuntimeError):
    pass


class TextToSpeech(Protocol):
    name: str

    async def synthesise(self, text: str) -> bytes:
        """OGG/Opus audio of ``text``."""
        ...


async def _pipe(commands: list[list[str]], data: bytes | None = None) -> bytes:
    """Run ``a | b`` without a shell; returns the last command's stdout."""
    first = await asyncio.create_subprocess_exec(
        *commands[0],
        stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    middle, _ = await first.communicate(data)
    if first.returncode != 0:
        raise SynthesisError(f"{commands[0][0]} exited with {first.returncode}")
    if len(commands) == 1:
        return middle
    return await _pipe(commands[1:], middle)


OPUSENC = ["opusenc", "--quiet", "--bitrate", "24"]


class EspeakTTS:
    """espeak-ng (Debian package espeak-ng) + opusenc (opus-tools)."""

    def __init__(self, voice: str = "nl", words_per_minute: int = 140) -> None:
        self.voice = voice
        self.speed = words_per_minute
        self.name = f"espeak-ng:{voice}:{words_per_minute}"

    async def synthesise(self, text: str) -> bytes:
        speak = ["espeak-ng", "-v", self.voice, "-s", str(self.speed), "--stdout", text]
        return await _pipe([speak, [*OPUSENC, "-", "-"]])


def piper_sample_rate(model: Path) -> int:
    """The sample rate of a Piper voice, from the config beside it (``<model>.onnx.json``,
    ``audio.sample_rate``): 22050 Hz for most voices, 16000 Hz for the x_low ones."""
    config = model.with_name(f"{model.name}.json")
    try:
        rate = json.loads(config.read_text(encoding="utf-8"))["audio"]["sample_rate"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SynthesisError(f"{config}: no audio.sample_rate ({type(exc).__name__})") from exc
    if not isinstance(rate, int) or isinstance(rate, bool) or not 8000 <= rate <= 192000:
        raise SynthesisError(f"{config}: audio.sample_rate {rate!r} is not a sample rate")
    return rate


class PiperTTS:
    """A local Piper voice model (``PIPER_MODEL``): piper writes raw 16-bit mono PCM at the rate in
    the model's config, and opusenc is told that rate (a wrong one plays too fast or too slow)."""

    def __init__(self, model: Path, sample_rate: int | None = None) -> None:
        self.model = model
        self.rate = sample_rate if sample_rate is not None else piper_sample_rate(model)
        # The rate is part of the cache key, so audio encoded at a wrong rate is never reused.
        self.name = f"piper:{model.name}:{self.rate}"

    def commands(self) -> list[list[str]]:
        """``piper | opusenc``, as argument lists."""
        piper = ["piper", "--model", str(self.model), "--output_raw"]
        raw = ["--raw", "--raw-rate", str(self.rate), "--raw-chan", "1"]
        return [piper, [*OPUSENC, *raw, "-", "-"]]

    async def synthesise(self, text: str) -> bytes:
        return await _pipe(self.commands(), text.encode("utf-8"))


_NOT_SPOKEN = re.compile(r"[^\w\s.,;:!?'()\-/%€]", re.UNICODE)


def speakable(text: str) -> str:
    """What is read aloud: no emoji or symbols, commands as words (``/stop`` -> ``stop``)."""
    text = re.sub(r"(?<!\w)/(\w+)", r"\1", text)
    text = _NOT_SPOKEN.sub(" ", text)
    return " ".join(text.split())


def is_voice_note(audio: bytes) -> bool:
    """An OGG container whose first stream is Opus (what Telegram plays as a voice note)."""
    return audio.startswith(OGG_MAGIC) and OPUS_HEAD in audio[:200]


class VoiceCache:
    """Synthesised audio by text; only fixed texts are kept on disk."""

    def __init__(self, backend: TextToSpeech, folder: Path) -> None:
        self.backend = backend
        self.folder = folder
        self.hits = 0
        self.misses = 0

    def _path(self, text: str) -> Path:
        digest = hashlib.sha256(f"{self.backend.name}\n{text}".encode()).hexdigest()
        return self.folder / digest[:2] / f"{digest}.ogg"

    async def audio(self, text: str, *, private: bool = False) -> bytes:
        spoken = speakable(text)
        if not spoken:
            raise SynthesisError("nothing to say")
        if private:
            return await self.backend.synthesise(spoken)
        path = self._path(spoken)
        if path.exists():
            self.hits += 1
            return path.read_bytes()
        self.misses += 1
        audio = await self.backend.synthesise(spoken)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(audio)
        os.replace(tmp.name, path)  # atomic: a crash never leaves half a file
        return audio
