"""Rendering helpers shared by every channel."""

from __future__ import annotations

TELEGRAM_TEXT_LIMIT = 4096


def split_message(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Split text into parts of at most ``limit`` characters.

    Cuts between paragraphs first, then between lines, then between words; only a single
    word longer than the limit is cut hard. Nothing is lost and no part is empty.
    """
    if limit < 2:
        raise ValueError("limit too small")
    parts: list[str] = []
    current = ""
    for piece in _pieces(text.strip(), limit):
        joined = f"{current}{piece}" if current else piece.lstrip("\n")
        if len(joined.rstrip()) <= limit:
            current = joined
            continue
        if current.strip():
            parts.append(current.rstrip())
        current = piece.lstrip("\n ")
    if current.strip():
        parts.append(current.rstrip())
    return parts or [""]


def _pieces(text: str, limit: int) -> list[str]:
    """Units that keep their leading separator, each at most ``limit`` long."""
    out: list[str] = []
    for p_index, paragraph in enumerate(text.split("\n\n")):
        lead = "\n\n" if p_index else ""
        for l_index, line in enumerate(paragraph.split("\n")):
            sep = lead if l_index == 0 else "\n"
            if len(sep + line) <= limit:
                out.append(sep + line)
                continue
            for w_index, word in enumerate(line.split(" ")):
                wsep = sep if w_index == 0 else " "
                while len(word) > limit - len(wsep):
                    cut = limit - len(wsep)
                    out.append(wsep + word[:cut])
                    word, wsep = word[cut:], ""
                out.append(wsep + word)
    return out
