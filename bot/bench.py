"""``python -m bot bench ...``: benchmarks that print figures (never timed asserts in tests)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import spacy
import yaml

from bot.config import Settings
from bot.content import Catalog
from bot.nlp.analyzer import Analyzer
from bot.services.agenda import AgendaService
from bot.storage.repo import Consult


def _median_seconds(work: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_nlp(settings: Settings, repeat: int = 30) -> str:
    """A full intake through analysis + agenda rendering vs bare blank('nl') tokenisation."""
    catalog = Catalog(settings.content_dir)
    data = yaml.safe_load(
        (settings.content_dir / "examples" / "bench_intake.yaml").read_text(encoding="utf-8")
    )
    answers: dict[str, Any] = data["answers"]
    texts = [v for v in answers.values() if isinstance(v, str)]
    words = sum(len(t.split()) for t in texts)

    start = time.perf_counter()
    analyzer = Analyzer(settings.content_dir)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    bare = spacy.blank("nl")
    bare_startup = time.perf_counter() - start

    agenda = AgendaService(None, catalog, settings.zone, settings.low_score_threshold, lambda: analyzer)  # type: ignore[arg-type]
    consult = Consult(1, 1, 1, None, datetime(2026, 12, 1, 13, 30, tzinfo=UTC), "ready", None)

    def full() -> None:
        agenda.render(agenda.build(consult, answers, None))

    def tokenise() -> None:
        for text in texts:
            bare(text)

    first = _median_seconds(full, 1)  # cold: lemma cache empty
    # Measured side by side, interleaved, so machine noise hits both alike.
    ours, base = [], []
    for _ in range(repeat):
        ours.append(_median_seconds(full, 1))
        base.append(_median_seconds(tokenise, 1))
    ours_m, base_m = statistics.median(ours), statistics.median(base)
    ratio = ours_m / base_m
    lines = [
        f"intake: {len(texts)} free-text answers, {words} words, {len(answers)} answers in all; "
        f"{repeat} runs",
        f"start-up: analyzer {startup * 1000:.0f} ms (spaCy blank nl + lexicons), bare blank('nl') "
        f"{bare_startup * 1000:.0f} ms",
        f"analysis + agenda rendering: {ours_m * 1000:.2f} ms median (first, cold run {first * 1000:.2f} ms)",
        f"bare blank('nl') tokenisation: {base_m * 1000:.2f} ms median",
        f"ratio: {ratio:.1f}x (target <= 20x)",
    ]
    return "\n".join(lines)


def bench_lemmas(gold_file: Path) -> str:
    """How much Dutch inflection each lemma source covers, on a gold list of word -> lemma."""
    from bot.nlp.analyzer import lemma

    pairs = yaml.safe_load(gold_file.read_text(encoding="utf-8"))["pairs"]
    blank = spacy.blank("nl")
    spacy_hits = sum(blank(w)[0].lemma_.lower() == g for w, g in pairs.items())
    identity = sum(w == g for w, g in pairs.items())
    ours = sum(lemma(w) == g for w, g in pairs.items())
    n = len(pairs)
    return "\n".join(
        [
            f"{n} inflected forms with their lemma ({gold_file})",
            f"spaCy blank('nl') lemma_ (no lookup tables installed): {spacy_hits}/{n} = {spacy_hits / n:.2f}",
            f"the word itself, lower-cased: {identity}/{n} = {identity / n:.2f}",
            f"simplemma (what bot/nlp uses): {ours}/{n} = {ours / n:.2f}",
        ]
    )


def run_bench(name: str, settings: Settings, repeat: int) -> str:
    if name == "nlp":
        return bench_nlp(settings, repeat)
    if name == "lemmas":
        return bench_lemmas(Path("tests/data/lemma_gold.yaml"))
    raise SystemExit(f"unknown benchmark {name!r}")


__all__ = ["Path", "bench_nlp", "run_bench"]
