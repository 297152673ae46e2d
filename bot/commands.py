"""Slash commands, channel-neutral: the words people type (``content/nl/commands.yaml``) to the
fixed names the services act on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PATIENT_ACTIONS = frozenset(
    {"start", "back", "pause", "resume", "help", "stop", "erase", "plan", "myplan", "discreet", "read_aloud"}
)
CLINICIAN_ACTIONS = frozenset(
    {"start", "agenda", "help", "plan", "invite_plan", "goal", "action", "end_action", "listen"}
)
PLAN_COMMANDS = frozenset({"plan", "invite_plan", "goal", "action", "end_action"})
UNKNOWN = "unknown"


class CommandsError(ValueError):
    """The commands file names an action the code does not know, or is malformed."""


@dataclass(frozen=True)
class Commands:
    patient: dict[str, str]
    clinician: dict[str, str]
    menu: tuple[str, ...]

    @classmethod
    def from_yaml(cls, data: Any) -> Commands:
        if not isinstance(data, dict):
            raise CommandsError("commands.yaml: expected 'patient', 'clinician' and 'menu'")
        tables: list[dict[str, str]] = []
        for part, known in (("patient", PATIENT_ACTIONS), ("clinician", CLINICIAN_ACTIONS)):
            table = data.get(part)
            if not isinstance(table, dict):
                raise CommandsError(f"commands.yaml: '{part}' must map words to actions")
            words = {str(w).casefold(): str(a) for w, a in table.items()}
            wrong = sorted(a for a in words.values() if a not in known)
            if wrong:
                raise CommandsError(f"commands.yaml: unknown {part} action(s) {', '.join(wrong)}")
            tables.append(words)
        menu = tuple(str(w) for w in data.get("menu") or ())
        missing = [w for w in menu if w not in tables[0]]
        if missing:
            raise CommandsError(f"commands.yaml: menu word(s) {', '.join(missing)} are no patient command")
        return cls(tables[0], tables[1], menu)

    def of_patient(self, text: str) -> str | None:
        """The action a patient's message asks for (``UNKNOWN`` for a slash word we do not know);
        None when the message is not a command."""
        command = split_command(text)
        return None if command is None else self.patient.get(command[0], UNKNOWN)

    def of_clinician(self, text: str) -> tuple[str, str] | None:
        """(action, the rest of the line) for a POH's command; None when it is none we know."""
        command = split_command(text)
        if command is None or command[0] not in self.clinician:
            return None
        return self.clinician[command[0]], command[1]


def split_command(text: str) -> tuple[str, str] | None:
    """``/Terug@voorgesprek_bot extra`` -> ("terug", "extra"); None when not a command."""
    stripped = text.strip()
    if not stripped.startswith("/") or len(stripped) < 2:
        return None
    word, _, rest = stripped[1:].partition(" ")
    return word.split("@", 1)[0].casefold(), rest.strip()
