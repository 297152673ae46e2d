from __future__ import annotations

import pytest

from bot.nlp.items import split_items
from bot.render import split_message


@pytest.mark.parametrize("limit", [20, 100, 4096])
def test_split_keeps_every_word_under_the_limit(limit: int) -> None:
    text = "\n\n".join(
        "\n".join(" ".join(f"w{p}{line}{w}" for w in range(9)) for line in range(7)) for p in range(30)
    )
    parts = split_message(text, limit)
    assert all(0 < len(p) <= limit for p in parts)
    assert " ".join(parts).split() == text.split()


def test_split_cuts_a_giant_word_hard() -> None:
    parts = split_message("a" * 9000)
    assert [len(p) for p in parts] == [4096, 4096, 808]


def test_short_text_is_one_part() -> None:
    assert split_message("Agenda\n\nkort") == ["Agenda\n\nkort"]


SENTENCE = "Ik heb pijn in mijn knie, vooral als ik de trap op loop"


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("- mijn knie\n- de pillen\n", ["mijn knie", "de pillen"]),
        ("1. slapen\n2) eten", ["slapen", "eten"]),
        ("knie, pillen, geld", ["knie", "pillen", "geld"]),
        (
            "Ik heb pijn in mijn knie, vooral als ik de trap op loop",
            ["Ik heb pijn in mijn knie, vooral als ik de trap op loop"],
        ),
        ("knie; knie; Knie", ["knie"]),
        ("   ", []),
    ],
)
def test_split_items(text: str, items: list[str]) -> None:
    assert split_items(text) == items
