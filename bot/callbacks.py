"""Typed button data: one class per button family, packed into Telegram's 64-byte callback data.

Like aiogram's ``CallbackData`` (a pydantic model with a prefix, packed as ``prefix:field:field``),
but channel-neutral, so services and the terminal demo use the same classes without importing
aiogram. ``unpack`` never raises: data that is forged, cut off or from an older version gives
``None``, which every service answers as a tap on an old button.

Fields are packed in order; trailing fields that hold their default are left out, so
``EraseTap(answer="no")`` is ``wis:no``. The last field takes the rest of the data (it may hold
``:``). Adding a family: a subclass with a ``prefix`` and its fields, and a handler for it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from bot.numbers import MAX_ROW_ID

CALLBACK_DATA_LIMIT = 64  # bytes, Telegram's limit
SEP = ":"


def _row(value: Any) -> int:
    """A record number as a button carries it: ASCII digits only, 0 to what SQLite stores."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= 19):
            raise ValueError("not a row id")
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ROW_ID:
        raise ValueError("not a row id")
    return value


RowId = Annotated[int, BeforeValidator(_row)]


class ButtonData(BaseModel):
    """Base of every button family."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    prefix: ClassVar[str]

    def pack(self) -> str:
        fields = type(self).model_fields
        values = [self._packed(getattr(self, name)) for name in fields]
        optional = [None if f.is_required() else self._packed(f.default) for f in fields.values()]
        while values and values[-1] == optional[len(values) - 1]:
            values.pop()
        data = SEP.join([self.prefix, *values])
        if len(data.encode("utf-8")) > CALLBACK_DATA_LIMIT:
            raise ValueError(f"{type(self).__name__} data over Telegram's 64-byte limit")
        return data

    @staticmethod
    def _packed(value: Any) -> str:
        return "" if value is None else str(value.value if isinstance(value, StrEnum) else value)

    @classmethod
    def matches(cls, data: str | None) -> bool:
        """The data belongs to this family (well-formed or not)."""
        return data is not None and (data == cls.prefix or data.startswith(cls.prefix + SEP))

    @classmethod
    def unpack(cls, data: str | None) -> Self | None:
        if data is None or not cls.matches(data) or len(data) > 4 * CALLBACK_DATA_LIMIT:
            return None
        names = list(cls.model_fields)
        parts = data.split(SEP, len(names))[1:]
        if len(parts) > len(names):
            return None
        try:
            return cls.model_validate(dict(zip(names, parts, strict=False)))
        except (ValidationError, ValueError):
            return None


class QuestionTap(ButtonData):
    """A button under a flow question: ``q:<question number>:<value>``. Added by the channel, so
    a tap on a button of an earlier question is known as old."""

    prefix: ClassVar[str] = "q"
    seq: RowId
    value: str


class ReminderOp(StrEnum):
    SHOW = "show"
    DONE = "done"
    FAIL = "fail"
    LATER = "later"
    BARRIER = "b"  # arg: what got in the way (or "none")
    NO_NOTE = "nonote"
    NO_VALUE = "novalue"
    SNOOZE = "l"  # arg: when
    REVIEW = "w"  # arg: how the goal went
    KEEP = "keep"
    RETIME = "retime"
    TIME = "t"  # arg: the new time


class ReminderTap(ButtonData):
    """A button under a reminder: ``r:<reminder>:<op>[:<arg>]``."""

    prefix: ClassVar[str] = "r"
    reminder: RowId
    op: ReminderOp
    arg: str = ""


class CheckTap(ButtonData):
    """Yes or no to a safety check question: ``sc:<check>:<y|n>``; someone the bot does not know
    has no stored check: ``sc:0:<kind>:<y|n>``."""

    prefix: ClassVar[str] = "sc"
    check_id: RowId
    kind: str | None = None
    yes: bool = False

    def pack(self) -> str:
        answer = "y" if self.yes else "n"
        parts = [self.prefix, str(self.check_id), *([self.kind] if self.kind else []), answer]
        return SEP.join(parts)

    @classmethod
    def unpack(cls, data: str | None) -> CheckTap | None:
        if data is None or not cls.matches(data) or len(data) > 4 * CALLBACK_DATA_LIMIT:
            return None
        parts = data.split(SEP)[1:]
        if len(parts) not in (2, 3) or parts[-1] not in ("y", "n"):
            return None
        if len(parts) == 3 and (parts[0] != "0" or not parts[1]):
            return None
        try:
            return cls(
                check_id=_row(parts[0]), kind=parts[1] if len(parts) == 3 else None, yes=parts[-1] == "y"
            )
        except ValueError:
            return None


class TranscriptTap(ButtonData):
    """Whether the bot heard a voice answer right: ``vt:<voice note>:<yes|no>``."""

    prefix: ClassVar[str] = "vt"
    note: RowId
    answer: Literal["yes", "no"]


class EraseTap(ButtonData):
    """The answer to "erase all my data?": ``wis:no``, or ``wis:yes:<asked>:<signature>`` where the
    signature ties the yes to the patient and the moment it was asked (a fresh nonce)."""

    prefix: ClassVar[str] = "wis"
    answer: Literal["yes", "no"]
    asked: RowId | None = None
    signature: str = ""


class AgendaTap(ButtonData):
    """A POH opens an agenda from the list: ``ag:<consult>``."""

    prefix: ClassVar[str] = "ag"
    consult: RowId


class ReplayTap(ButtonData):
    """Play a voice note again: ``v:again``."""

    prefix: ClassVar[str] = "v"
    what: Literal["again"] = "again"

    def pack(self) -> str:
        return f"{self.prefix}{SEP}{self.what}"  # never shortened to the bare prefix


FAMILIES: tuple[type[ButtonData], ...] = (
    QuestionTap,
    ReminderTap,
    CheckTap,
    TranscriptTap,
    EraseTap,
    AgendaTap,
    ReplayTap,
)


def family_of(data: str | None) -> type[ButtonData] | None:
    return next((family for family in FAMILIES if family.matches(data)), None)
