"""Speech to text for voice answers: optional, offline, Dutch forced.

Without a backend the bot keeps the audio for the POH and goes on. With one (faster-whisper and a
local model folder, ``STT_MODEL_DIR``; ``pip install -e '.[stt]'``) the patient hears/reads back
what was understood and confirms it before it is used. The patient's audio stays in memory: it is
handed to faster-whisper as a file-like object (PyAV decodes it from there), never written to a
temporary file.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any, Protocol


class SpeechToText(Protocol):
    async def transcribe(self, audio: bytes) -> str:
        """The Dutch words in an OGG/Opus voice note ("" when nothing was understood)."""
        ...


class WhisperSTT:
    def __init__(self, model_dir: Path, *, model: Any = None) -> None:
        """``model``: an already loaded model (tests pass a fake); otherwise loaded on first use."""
        self.model_dir = model_dir
        self._model: Any = model

    def _load(self) -> Any:
        if self._model is None:
            from faster_whisper import WhisperModel  # optional dependency

            self._model = WhisperModel(str(self.model_dir), device="cpu", compute_type="int8")
        return self._model

    def _run(self, audio: bytes) -> str:
        segments, _ = self._load().transcribe(io.BytesIO(audio), language="nl", vad_filter=True)
        return " ".join(s.text.strip() for s in segments).strip()

    async def transcribe(self, audio: bytes) -> str:
        return await asyncio.to_thread(self._run, audio)
