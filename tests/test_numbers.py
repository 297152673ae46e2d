"""Numbers from outside (typed, tapped, in a URL): a value or None, never an exception."""

from __future__ import annotations

import pytest

from bot.numbers import MAX_ROW_ID, row_id, whole_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", 7),
        (" 7 ", 7),
        ("-3", -3),
        ("0", 0),
        ("5²", None),
        ("٣", None),
        ("①", None),
        ("1e3", None),
        ("0x10", None),
        ("", None),
        ("-", None),
        ("7.5", None),
        ("9" * 31, None),
        ("½", None),
        ("7\n8", None),
    ],
)
def test_whole_number(text: str, expected: int | None) -> None:
    assert whole_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12),
        ("#12", 12),
        (" #12 ", 12),
        (str(MAX_ROW_ID), MAX_ROW_ID),
        (str(MAX_ROW_ID + 1), None),
        ("0", None),
        ("-4", None),
        ("#", None),
        ("##12", None),
        ("12a", None),
        ("9" * 30, None),
    ],
)
def test_row_id(text: str, expected: int | None) -> None:
    assert row_id(text) == expected


def test_every_code_point_around_digits_is_safe() -> None:
    # Every character Python calls a digit or numeric, alone and after a "1": never an exception.
    odd = [chr(c) for c in range(0x110000) if chr(c).isdigit() or chr(c).isnumeric()]
    assert len(odd) > 500
    for ch in odd:
        for text in (ch, "1" + ch, ch + "1", "#" + ch):
            value = row_id(text)
            assert value is None or (0 < value <= MAX_ROW_ID and text.strip("#").isascii())
