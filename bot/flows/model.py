"""Channel-neutral inputs, outputs and effects shared by all flows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


# --- what comes in -------------------------------------------------------------------
@dataclass(frozen=True)
class Text:
    """Free text typed by the user. ``forwarded``: the patient forwarded someone else's message,
    so the words may not be their own (the agenda says so)."""

    text: str
    forwarded: bool = False


@dataclass(frozen=True)
class Choice:
    """A tap on a button. ``seq`` is the question number the button was shown with."""

    seq: int
    value: str


@dataclass(frozen=True)
class Command:
    """A conversation command the flow itself handles (``back``)."""

    name: str


@dataclass(frozen=True)
class Unsupported:
    """Something the flow cannot read: sticker, photo, voice, location, edited message...

    ``text`` carries any words that came with it (an edit, a caption): the flow does not use
    them as an answer, but the safety check still reads them.
    """

    kind: str
    text: str | None = None


Input = Text | Choice | Command | Unsupported


# --- what goes out -------------------------------------------------------------------
@dataclass(frozen=True)
class Button:
    label: str
    value: str


@dataclass(frozen=True)
class OutMessage:
    """One message to show.

    ``seq`` is set for a question: the adapter puts it in every button so that taps on
    buttons of old questions can be recognised. ``edit`` asks the adapter to replace the
    message the user just tapped (used for multi-select toggles) instead of sending anew.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    seq: int | None = None
    edit: bool = False
    # Reading aloud: ``private`` texts (the patient's own words, dates) are never cached on disk;
    # ``speak`` texts are read aloud even before the patient chose to (the read-aloud question).
    private: bool = False
    speak: bool = False
    voice: bytes | None = None  # a voice note (OGG/Opus) to send instead of a text

    def to_dict(self) -> dict[str, Any]:
        """As JSON for a later delivery (the outbox); a voice note is made again at send time."""
        rows = [[[b.label, b.value] for b in row] for row in self.buttons]
        return {"text": self.text, "buttons": rows, "seq": self.seq, "private": self.private}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutMessage:
        rows = tuple(tuple(Button(str(label), str(value)) for label, value in row) for row in data["buttons"])
        return cls(str(data["text"]), rows, seq=data.get("seq"), private=bool(data.get("private")))


# --- what must be stored -------------------------------------------------------------
@dataclass(frozen=True)
class SaveAnswer:
    key: str
    value: Any


@dataclass(frozen=True)
class DeleteAnswer:
    key: str


@dataclass(frozen=True)
class RecordConsent:
    given: bool


@dataclass(frozen=True)
class Completed:
    pass


@dataclass(frozen=True)
class SetPreference:
    """A patient preference chosen in a flow (read_aloud, simple_mode)."""

    name: str
    value: bool


Effect = SaveAnswer | DeleteAnswer | RecordConsent | Completed | SetPreference


@dataclass
class Result:
    """What a flow step produced. ``changed`` is False when the state is untouched."""

    state: Any
    messages: list[OutMessage] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    toast: str | None = None
    changed: bool = False
