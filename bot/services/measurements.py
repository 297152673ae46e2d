"""Patient-typed measurements: parse, check the range, and the signalling rules for the POH.

Pure: no I/O. Values are checked against what a person can plausibly type (not clinical
limits): nonsense gets a clear message, a real but worrying value is accepted and signalled.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_RULES = Path(__file__).with_name("signal_rules.yaml")


@dataclass(frozen=True)
class Kind:
    parts: int  # 2 for blood pressure (upper/lower), else 1
    low: tuple[float, ...]
    high: tuple[float, ...]
    decimals: int


KINDS: dict[str, Kind] = {
    "blood_pressure": Kind(2, (60, 30), (280, 160), 0),
    "weight": Kind(1, (25,), (350,), 1),
    "steps": Kind(1, (0,), (100_000,), 0),
    "pain": Kind(1, (0,), (10,), 0),
    "glucose": Kind(1, (1.0,), (40.0,), 1),
}

_NUMBER = r"(\d+(?:[.,]\d+)?)"
_PAIR = re.compile(_NUMBER + r"\s*(?:/|-|op|over|\s)\s*" + _NUMBER)
_SINGLE = re.compile(_NUMBER)


class MeasurementError(ValueError):
    """``key`` names the message (``measure.bad_*``) that explains the problem."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _number(text: str, kind: str) -> float:
    if kind == "steps":
        text = text.replace(".", "")  # 5.000 steps
    return float(text.replace(",", "."))


def parse(kind: str, text: str) -> list[float]:
    """``135/85``, ``135 op 85``, ``82,5 kg``, ``5.000`` -> numbers, or MeasurementError."""
    spec = KINDS[kind]
    cleaned = text.casefold().strip()
    if spec.parts == 2:
        match = _PAIR.search(cleaned)
        if not match:
            raise MeasurementError("measure.bad_format")
        values = [_number(match[1], kind), _number(match[2], kind)]
        if values[0] <= values[1]:
            raise MeasurementError("measure.bad_order")
    else:
        numbers = _SINGLE.findall(cleaned)
        if len(numbers) != 1:
            raise MeasurementError("measure.bad_format")
        values = [_number(numbers[0], kind)]
    for value, low, high in zip(values, spec.low, spec.high, strict=True):
        if not low <= value <= high:
            raise MeasurementError("measure.bad_range")
    return [round(v, spec.decimals) if spec.decimals else int(v) for v in values]


def show(kind: str, values: list[float]) -> str:
    """How a value is written back: ``135/85``, ``82,5``."""
    return "/".join(f"{v:g}".replace(".", ",") for v in values)


@dataclass(frozen=True)
class Signal:
    rule: str  # above | below | rises | not_done
    kind: str  # measurement kind, or "action"
    detail: str  # the value(s) or streak length, shown to the POH
    tell_patient: bool = False


class SignalRules:
    """Practice-configurable thresholds and trends (YAML, see ``signal_rules.yaml``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.not_done_streak = int(data.get("not_done_streak", 3))
        self.measurements: dict[str, dict[str, Any]] = data.get("measurements") or {}
        for kind in self.measurements:
            if kind not in KINDS:
                raise ValueError(f"signal rules: unknown measurement {kind!r}")

    @classmethod
    def load(cls, path: Path | None = None) -> SignalRules:
        with (path or DEFAULT_RULES).open(encoding="utf-8") as fh:
            return cls(yaml.safe_load(fh) or {})

    def check(
        self, kind: str, history: list[list[float]], limits: dict[str, Any] | None = None
    ) -> list[Signal]:
        """Signals for the newest value; ``history`` is oldest first and ends with the new one.
        ``limits`` (above/below) set for this patient's action replace the practice's limits."""
        rules = {**(self.measurements.get(kind) or {}), **(limits or {})}
        latest = history[-1]
        found: list[Signal] = []
        above = rules.get("above")
        if above and any(v > limit for v, limit in zip(latest, above, strict=False)):
            found.append(Signal("above", kind, show(kind, latest), tell_patient=True))
        below = rules.get("below")
        if below and any(v < limit for v, limit in zip(latest, below, strict=False)):
            found.append(Signal("below", kind, show(kind, latest), tell_patient=True))
        rises = int(rules.get("rises_in_row") or 0)
        if rises and len(history) > rises:
            tail = [h[0] for h in history[-(rises + 1) :]]
            if all(b > a for a, b in itertools.pairwise(tail)):
                # Signal once per run: not again while the rise simply goes on.
                before = [h[0] for h in history[-(rises + 2) : -1]]
                if len(before) <= rises or not all(b > a for a, b in itertools.pairwise(before)):
                    found.append(Signal("rises", kind, " → ".join(show(kind, [v]) for v in tail)))
        return found

    def check_streak(self, streak: int) -> list[Signal]:
        if streak == self.not_done_streak:
            return [Signal("not_done", "action", str(streak))]
        return []
