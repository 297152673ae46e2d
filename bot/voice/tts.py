"""Text to speech, offline: espeak-ng's Dutch voice by default, a Piper model when configured.

Both produce Telegram voice notes (OGG container, Opus codec) through ``opusenc``. Audio of a
fixed text is cached on disk by the hash of backend + text; a private text (with the patient's
own words, dates or actions) is synthesised on demand and never written to disk.
"""

from __future__ import annotations

import asyncio
import hashlib
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


class PiperTTS:
    """A local Piper voice model (``PIPER_MODEL``); raw 16-bit mono PCM at the model's rate."""

    def __init__(self, model: Path, sample_rate: int = 22050) -> None:
        self.model = model
        self.rate = sample_rate
        self.name = f"piper:{model.name}"

    async def synthesise(self, text: str) -> bytes:
        piper = ["piper", "--model", str(self.model), "--output_raw"]
        raw = ["--raw", "--raw-rate", str(self.rate), "--raw-chan", "1"]
        return await _pipe([piper, [*OPUSENC, *raw, "-", "-"]], text.encode("utf-8"))


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
