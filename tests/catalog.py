"""The Dutch texts a test taps or looks for, read from ``content/nl/`` (never typed into the test).

A rewording in ``content/nl/`` then moves the tests with it. Written out in tests are only what a
patient or POH types, the safety/NLP evaluation data (``tests/data``), patient data the bot
repeats, and checks of a deliberate wording property (the B1 lint, the numbers 112 and 113).

    harness.tap(PATIENT, label("buttons.erase_yes"))        # a button from messages.yaml
    assert says("erase_cancelled") in text                  # a message from messages.yaml
    assert says("clinician.new_agenda", id=1) in text       # ... with its parameters
    assert shows(text, "bad.scale_range")                   # ... its parameters left open
    assert asks("lichaamsfuncties.talk") in text            # a flow question (intake.yaml)
    harness.tap(PATIENT, option("plan", "measure", "none")) # a flow's option (plan.yaml)
    harness.tap(PATIENT, theme("pijn")); dimension("meedoen", emoji=True); face(5)
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from bot.content import Catalog
from bot.flows.engine import Step, expand_steps

CATALOG = Catalog()  # the default content folder, as the bot reads it

__all__ = ["CATALOG", "asks", "dimension", "face", "label", "option", "says", "shows", "theme"]


def says(key: str, **params: Any) -> str:
    """The message at a dotted key of ``messages.yaml``, rendered with ``params``."""
    return CATALOG.t(key, **params)


def label(key: str, **params: Any) -> str:
    """A button label from ``messages.yaml`` (``buttons.*``, ``reminder.buttons.*``, ``voice.*``)."""
    return CATALOG.t(key, **params)


_PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


@cache
def _pattern(source: str) -> re.Pattern[str]:
    literal = _PLACEHOLDER.split(source.strip())
    return re.compile("(?s:.*?)".join(re.escape(part) for part in literal))


def shows(text: str, key: str) -> bool:
    """Whether ``text`` holds the message at ``key``, each ``{{ ... }}`` (or ``{% ... %}``) in it
    matching any text: for a message whose parameters the test does not know or care about."""
    return _pattern(str(CATALOG.raw(key))).search(text) is not None


@cache
def _steps(flow: str) -> dict[str, Step]:
    return {step.key: step for step in expand_steps(CATALOG, CATALOG.flow(flow), flow)}


def asks(step: str, flow: str = "intake", *, simple: bool = False, **params: Any) -> str:
    """The question of a flow step by its key (``what_matters``, ``meedoen.score``, ``goal``), as
    the engine renders it; ``simple`` for the simple-mode sentence. ``params`` for the rest (the
    plan's summary needs ``answers`` and ``label``)."""
    found = _steps(flow)[step]
    spec = found.spec
    source = spec.simple_prompt if simple and spec.simple_prompt else spec.prompt
    values: dict[str, Any] = {
        "dimension": found.dimension,
        "index": found.index,
        "total": found.total,
        "max": getattr(spec, "max", None),
        **params,
    }
    return CATALOG.render_string(source, **values)


def option(flow: str, options: str, value: str) -> str:
    """The label of an option in a flow file: ``option("plan", "measure", "none")``."""
    for item in CATALOG.flow(flow)["options"][options]:
        if str(item["value"]) == value:
            return str(item["label"])
    raise KeyError(f"{flow}.yaml has no option {value!r} in {options!r}")


def face(value: int) -> str:
    """The simple-mode face for a score (``intake.yaml`` ``faces``)."""
    for item in CATALOG.intake["faces"]:
        if item["value"] == value:
            return str(item["label"])
    raise KeyError(f"no face for {value}")


def theme(theme_id: str, *, emoji: bool = False) -> str:
    """A theme's label (``themes.yaml``); ``emoji``: with its emoji in front, as on its button."""
    found = CATALOG.theme(theme_id)
    return f"{found.emoji} {found.label}" if emoji else found.label


def dimension(dim_id: str, *, emoji: bool = False) -> str:
    """A dimension's name (``dimensions.yaml``); ``emoji``: with its emoji in front (priorities)."""
    found = CATALOG.dimension(dim_id)
    return f"{found.emoji} {found.name}" if emoji else found.name
