"""Slash commands come from content/nl/commands.yaml: the words may change, the actions may not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.commands import UNKNOWN, Commands, CommandsError
from bot.content import Catalog, ContentError

COMMANDS = Catalog().commands


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("/terug", "back"),
        ("/Terug@voorgesprek_bot", "back"),
        ("  /hulp  ", "help"),
        ("/wis alles", "erase"),
        ("/onzin", UNKNOWN),
        ("terug", None),
        ("/", None),
    ],
)
def test_a_patients_words_map_to_actions(text: str, action: str | None) -> None:
    assert COMMANDS.of_patient(text) == action


def test_a_pohs_command_keeps_the_rest_of_the_line() -> None:
    assert COMMANDS.of_clinician("/actie 12 dagelijks 09:00 wandelen") == (
        "action",
        "12 dagelijks 09:00 wandelen",
    )
    assert COMMANDS.of_clinician("/wis") is None  # a patient's command, not a POH's


def test_every_menu_word_is_a_patient_command_with_a_description() -> None:
    catalog = Catalog()
    assert COMMANDS.menu and all(catalog.t(f"commands.{word}") for word in COMMANDS.menu)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"patient": {"terug": "undo"}}, "unknown patient action(s) undo"),
        ({"menu": ["terug", "weg"]}, "menu word(s) weg"),
        ({"clinician": ["agenda"]}, "'clinician' must map words to actions"),
    ],
)
def test_a_bad_commands_file_fails_at_start_up_and_says_why(
    tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    content = tmp_path / "nl"
    shutil.copytree(Catalog().content_dir, content)
    data = yaml.safe_load((content / "commands.yaml").read_text(encoding="utf-8"))
    for part, value in change.items():
        data[part] = {**data[part], **value} if isinstance(value, dict) else value
    (content / "commands.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ContentError, match=r"commands\.yaml") as caught:
        Catalog(content)
    assert problem in str(caught.value)
    with pytest.raises(CommandsError):
        Commands.from_yaml(None)
