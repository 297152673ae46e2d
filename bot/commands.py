"""Slash commands, channel-neutral: Dutch command words to internal names."""

from __future__ import annotations

PATIENT_COMMANDS = {
    "start": "start",
    "terug": "back",
    "pauze": "pause",
    "verder": "resume",
    "help": "help",
    "hulp": "help",
    "stop": "stop",
    "wis": "erase",
}
CLINICIAN_COMMANDS = {"start": "start", "agenda": "agenda", "help": "help", "hulp": "help"}
# Shown in Telegram's command menu (descriptions live in content/nl/messages.yaml).
MENU = ("terug", "pauze", "help", "stop", "wis")


def split_command(text: str) -> tuple[str, str] | None:
    """``/Terug@voorgesprek_bot extra`` -> ("terug", "extra"); None when not a command."""
    stripped = text.strip()
    if not stripped.startswith("/") or len(stripped) < 2:
        return None
    word, _, rest = stripped[1:].partition(" ")
    return word.split("@", 1)[0].casefold(), rest.strip()
