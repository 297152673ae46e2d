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
    "plan": "plan",
    "mijnplan": "myplan",
    "stil": "discreet",
    "voorlezen": "read_aloud",
}
CLINICIAN_COMMANDS = {
    "start": "start",
    "agenda": "agenda",
    "help": "help",
    "hulp": "help",
    "plan": "plan",
    "planmaken": "invite_plan",
    "doel": "goal",
    "actie": "action",
    "stopactie": "end_action",
    "luister": "listen",
}
PLAN_COMMANDS = {"plan", "invite_plan", "goal", "action", "end_action"}
# Shown in Telegram's command menu (descriptions live in content/nl/messages.yaml).
MENU = ("terug", "pauze", "voorlezen", "plan", "mijnplan", "stil", "help", "stop", "wis")


def split_command(text: str) -> tuple[str, str] | None:
    """``/Terug@voorgesprek_bot extra`` -> ("terug", "extra"); None when not a command."""
    stripped = text.strip()
    if not stripped.startswith("/") or len(stripped) < 2:
        return None
    word, _, rest = stripped[1:].partition(" ")
    return word.split("@", 1)[0].casefold(), rest.strip()
