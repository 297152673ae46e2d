"""Evaluation of the analyzer on a labelled YAML set (``tests/data/nlp_eval.yaml``).

Prints precision / recall / F1 per label and overall, and context accuracy per type.
Targets (issue 3): red flags recall >= 0.98 with precision >= 0.85, domain macro-F1 >= 0.80,
negation accuracy >= 0.90.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.nlp.analyzer import CONTEXT_TYPES, Analysis, Analyzer

TARGETS = {
    "red_flags_recall": 0.98,
    "red_flags_precision": 0.85,
    "domains_macro_f1": 0.80,
    "negation_accuracy": 0.90,
}


@dataclass
class Scores:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)

    def add(self, expected: set[str], predicted: set[str]) -> None:
        for label in expected & predicted:
            self.tp[label] += 1
        for label in predicted - expected:
            self.fp[label] += 1
        for label in expected - predicted:
            self.fn[label] += 1

    def prf(self, label: str | None = None) -> tuple[float, float, float, int]:
        tp = self.tp[label] if label else sum(self.tp.values())
        fp = self.fp[label] if label else sum(self.fp.values())
        fn = self.fn[label] if label else sum(self.fn.values())
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f, tp + fn

    def labels(self) -> list[str]:
        return sorted(set(self.tp) | set(self.fp) | set(self.fn))

    def macro_f1(self, labels: list[str]) -> float:
        return sum(self.prf(label)[2] for label in labels) / len(labels) if labels else 1.0


@dataclass
class Report:
    items: int
    crisis: int
    tricky: int
    flags: Scores
    domains: Scores
    themes: Scores
    context: dict[str, tuple[int, int]]  # type -> (correct, total)
    misses: list[str]
    metrics: dict[str, float]

    def passed(self) -> bool:
        m = self.metrics
        return (
            m["red_flags_recall"] >= TARGETS["red_flags_recall"]
            and m["red_flags_precision"] >= TARGETS["red_flags_precision"]
            and m["domains_macro_f1"] >= TARGETS["domains_macro_f1"]
            and m["negation_accuracy"] >= TARGETS["negation_accuracy"]
        )


def load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return list(yaml.safe_load(fh)["items"])


def _context_hits(analysis: Analysis, key: str) -> list[Any]:
    return [t for t in analysis.topics if t.theme == key or t.lemma == key or key in t.lemma.split()]


def evaluate(analyzer: Analyzer, items: list[dict[str, Any]], dimensions: list[str]) -> Report:
    flags, domains, themes = Scores(), Scores(), Scores()
    context = {kind: [0, 0] for kind in CONTEXT_TYPES}
    misses: list[str] = []
    for item in items:
        a = analyzer.analyze(item["t"])
        expected_flags, got_flags = set(item.get("rf", [])), set(a.red_flags)
        flags.add(expected_flags, got_flags)
        if expected_flags != got_flags:
            misses.append(f"red flags {sorted(got_flags)} != {sorted(expected_flags)}: {item['t']}")
        domains.add(set(item.get("d", [])), set(a.domains))
        themes.add(set(item.get("th", [])), set(a.themes))
        for key, wanted in (item.get("c") or {}).items():
            hits = _context_hits(a, key)
            for kind in CONTEXT_TYPES:
                context[kind][1] += 1
                got = bool(hits) and any(getattr(t, kind) for t in hits)
                if hits and got == (kind in wanted):
                    context[kind][0] += 1
                elif kind == "negated":
                    misses.append(
                        f"negation of {key!r} {got} (topics {[t.lemma for t in a.topics]}): {item['t']}"
                    )
    p, r, _, _ = flags.prf()
    metrics = {
        "red_flags_precision": p,
        "red_flags_recall": r,
        "domains_macro_f1": domains.macro_f1(dimensions),
        "themes_macro_f1": themes.macro_f1(themes.labels()),
        "negation_accuracy": context["negated"][0] / context["negated"][1] if context["negated"][1] else 1.0,
    }
    return Report(
        items=len(items),
        crisis=sum(1 for i in items if i.get("rf")),
        tricky=sum(1 for i in items if i.get("tricky")),
        flags=flags,
        domains=domains,
        themes=themes,
        context={k: (v[0], v[1]) for k, v in context.items()},
        misses=misses,
        metrics=metrics,
    )


def format_report(report: Report, *, show_misses: bool = True) -> str:
    lines = [f"items: {report.items} (crisis: {report.crisis}, tricky benign: {report.tricky})", ""]
    for title, scores in (
        ("red flags", report.flags),
        ("domains", report.domains),
        ("themes", report.themes),
    ):
        lines.append(f"{title:<24} {'precision':>9} {'recall':>7} {'F1':>6} {'n':>5}")
        for label in scores.labels():
            p, r, f, n = scores.prf(label)
            lines.append(f"  {label:<22} {p:9.2f} {r:7.2f} {f:6.2f} {n:5d}")
        p, r, f, n = scores.prf()
        lines.append(f"  {'(micro, all labels)':<22} {p:9.2f} {r:7.2f} {f:6.2f} {n:5d}")
        lines.append("")
    lines.append("context accuracy")
    for kind, (ok, total) in report.context.items():
        lines.append(f"  {kind:<22} {ok / total if total else 1:9.2f}   ({ok}/{total})")
    lines.append("")
    m = report.metrics
    lines.append(
        f"targets: red flags recall {m['red_flags_recall']:.3f} (>= 0.98), precision "
        f"{m['red_flags_precision']:.3f} (>= 0.85); domain macro-F1 {m['domains_macro_f1']:.3f} (>= 0.80); "
        f"negation accuracy {m['negation_accuracy']:.3f} (>= 0.90); theme macro-F1 {m['themes_macro_f1']:.3f}"
    )
    lines.append("RESULT: " + ("all targets met" if report.passed() else "BELOW TARGET"))
    if show_misses and report.misses:
        lines += ["", "misses:"] + [f"  {miss}" for miss in report.misses]
    return "\n".join(lines)
