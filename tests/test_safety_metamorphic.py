"""Metamorphic tests: every dev crisis statement, rewritten the way people write, keeps its flag.

A time word first, "ik denk dat ..." around it, past tense, third person, chat spelling, one typo,
a filler clause. The flag kept means: still routed or checked, with the same kind among those found.
Rewrites that do not apply (no "ik" to move, more than one clause for "ik denk dat") are skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlp.analyzer import Analyzer
from bot.nlp.evaluate import expected_kinds, load
from tests.metamorphic import REWRITES, i_think_that, one_typo, third_person, time_word_first

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


def test_rewrites_do_what_they_say() -> None:
    assert time_word_first("Ik heb pijn op de borst.") == "Vannacht heb ik pijn op de borst."
    assert i_think_that("Ik heb pijn op de borst.") == "Ik denk dat ik pijn op de borst heb"
    assert third_person("Ik heb mezelf gesneden") == "mijn man heeft zichzelf gesneden"
    assert one_typo("ik heb slaappillen genomen") == "ik heb slaapillen genomen"


# The share of caught dev statements that must keep their flag after each rewrite. Every lost one is
# listed when a rewrite falls below its floor; the floors are the figures of the last tuning round
# (past tense is the lowest: the second layer learned mostly present-tense statements).
KEEP_FLOOR = {
    "time word first": 0.99,
    "ik denk dat": 0.94,
    "past tense": 0.965,  # 0.970 -> 0.9695 when dev grew by the fourth batch (stop 20), rules unchanged
    "third person": 0.97,
    "chat spelling": 0.97,
    "one typo": 0.96,
    "filler clause": 0.99,
}


def test_every_rewrite_has_a_floor() -> None:
    assert set(KEEP_FLOOR) == set(REWRITES)


@pytest.mark.parametrize("name", sorted(REWRITES))
def test_dev_crisis_statements_keep_their_flag(analyzer: Analyzer, name: str) -> None:
    rewrite = REWRITES[name]
    checked, lost = 0, []
    for item in load(DATA / "safety_dev.yaml"):
        kinds = expected_kinds(item)
        if not kinds or not any(k in analyzer.assess(item["t"]).kinds for k in kinds):
            continue  # benign, or already missed in its own form (the dev report lists those)
        new = rewrite(item["t"])
        if new is None:
            continue
        checked += 1
        if not any(k in analyzer.assess(new).kinds for k in kinds):
            lost.append(f"{kinds}: {item['t']!r} -> {new!r}")
    assert checked >= 20, f"{name} applied to only {checked} statements"
    kept = 1 - len(lost) / checked
    print(f"{name}: kept {kept:.3f} of {checked}")
    assert kept >= KEEP_FLOOR[name], f"{name}: {len(lost)} of {checked} lost their flag:\n" + "\n".join(lost)
