"""Evaluation of the analyzer on labelled YAML sets.

- ``evaluate`` (``tests/data/nlp_eval.yaml``): domains, themes and context (negation ...):
  precision / recall / F1 per label, context accuracy per type. Targets: domain macro-F1 >= 0.80,
  negation accuracy >= 0.90.
- ``evaluate_safety`` (``tests/data/safety_dev.yaml`` and the frozen ``safety_heldout.yaml``): the
  crisis safety net per kind and tier, and benign statements flagged or routed.
- ``evaluate_ph`` (``tests/data/ph_dev.yaml`` and the frozen ``ph_heldout.yaml``): general life
  statements tagged with their Positive Health dimension.
Dev and held-out are always printed side by side: a figure on the set the rules were tuned on says
little on its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.nlp.analyzer import CONTEXT_TYPES, Analysis, Analyzer

TARGETS = {
    "domains_macro_f1": 0.80,
    "negation_accuracy": 0.90,
}
SAFETY_TARGETS = {
    "caught": 0.98,  # crisis statements routed or checked, at least
    "routed": 0.90,  # clear emergencies (labelled route) routed at once, at least
    "benign_flagged": 0.10,  # benign statements routed or checked, at most
    "benign_routed": 0.03,  # benign statements routed, at most
}
PH_TARGET = 0.80  # statements tagged with their dimension, at most two dimensions
HELD_OUT = "held-out"  # the report name of the frozen sets


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
    domains: Scores
    themes: Scores
    context: dict[str, tuple[int, int]]  # type -> (correct, total)
    misses: list[str]
    metrics: dict[str, float]

    def passed(self) -> bool:
        m = self.metrics
        return (
            m["domains_macro_f1"] >= TARGETS["domains_macro_f1"]
            and m["negation_accuracy"] >= TARGETS["negation_accuracy"]
        )


def load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return list(yaml.safe_load(fh)["items"])


def _context_hits(analysis: Analysis, key: str) -> list[Any]:
    return [t for t in analysis.topics if t.theme == key or t.lemma == key or key in t.lemma.split()]


def evaluate(analyzer: Analyzer, items: list[dict[str, Any]], dimensions: list[str]) -> Report:
    domains, themes = Scores(), Scores()
    context = {kind: [0, 0] for kind in CONTEXT_TYPES}
    misses: list[str] = []
    for item in items:
        a = analyzer.analyze(item["t"])
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
    metrics = {
        "domains_macro_f1": domains.macro_f1(dimensions),
        "themes_macro_f1": themes.macro_f1(themes.labels()),
        "negation_accuracy": context["negated"][0] / context["negated"][1] if context["negated"][1] else 1.0,
    }
    return Report(
        items=len(items),
        crisis=sum(1 for i in items if i.get("rf")),
        tricky=sum(1 for i in items if i.get("tricky")),
        domains=domains,
        themes=themes,
        context={k: (v[0], v[1]) for k, v in context.items()},
        misses=misses,
        metrics=metrics,
    )


def format_report(report: Report, *, show_misses: bool = True) -> str:
    lines = [f"items: {report.items} (crisis: {report.crisis}, tricky benign: {report.tricky})", ""]
    for title, scores in (
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
        f"targets: domain macro-F1 {m['domains_macro_f1']:.3f} (>= 0.80); "
        f"negation accuracy {m['negation_accuracy']:.3f} (>= 0.90); theme macro-F1 {m['themes_macro_f1']:.3f}"
    )
    lines.append("RESULT: " + ("all targets met" if report.passed() else "BELOW TARGET"))
    if show_misses and report.misses:
        lines += ["", "misses:"] + [f"  {miss}" for miss in report.misses]
    return "\n".join(lines)


# -- the safety net --------------------------------------------------------------------------------
def expected_kinds(item: dict[str, Any]) -> list[str]:
    """The kinds an item is labelled with; [] for a benign statement (``kind: none``)."""
    kind = item.get("kind", "none")
    kinds = [kind] if isinstance(kind, str) else list(kind)
    return [k for k in kinds if k != "none"]


@dataclass
class Rate:
    hit: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.hit += ok
        self.total += 1

    @property
    def value(self) -> float:
        return self.hit / self.total if self.total else 1.0

    def __str__(self) -> str:
        return f"{self.value:.2f} ({self.hit}/{self.total})" if self.total else "-"


@dataclass
class SafetyReport:
    """Crisis: caught (route or check), routed, and the right kind among those found. Benign: flagged."""

    caught: dict[str, Rate] = field(default_factory=dict)  # per expected kind, and "all"
    routed: dict[str, Rate] = field(default_factory=dict)  # items labelled tier: route
    kind_right: dict[str, Rate] = field(default_factory=dict)
    by_tier: dict[str, Rate] = field(default_factory=dict)  # caught, per labelled tier
    by_tag: dict[str, Rate] = field(default_factory=dict)  # caught, per tag (chat, third_person ...)
    benign_flagged: Rate = field(default_factory=Rate)
    benign_routed: Rate = field(default_factory=Rate)
    benign_by_tag: dict[str, Rate] = field(default_factory=dict)  # flagged, per tag
    misses: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        all_ = "all"
        return {
            "caught": self.caught.get(all_, Rate()).value,
            "routed": self.routed.get(all_, Rate()).value,
            "benign_flagged": self.benign_flagged.value,
            "benign_routed": self.benign_routed.value,
        }

    def passed(self) -> bool:
        m, t = self.metrics(), SAFETY_TARGETS
        return (
            m["caught"] >= t["caught"]
            and m["routed"] >= t["routed"]
            and m["benign_flagged"] <= t["benign_flagged"]
            and m["benign_routed"] <= t["benign_routed"]
        )


def evaluate_safety(analyzer: Analyzer, items: list[dict[str, Any]]) -> SafetyReport:
    report = SafetyReport()

    def rate(table: dict[str, Rate], key: str) -> Rate:
        return table.setdefault(key, Rate())

    for item in items:
        result = analyzer.assess(item["t"])
        kinds = expected_kinds(item)
        tags = list(item.get("tags") or [])
        if not kinds:
            report.benign_flagged.add(bool(result))
            report.benign_routed.add(bool(result.route))
            for tag in tags:
                rate(report.benign_by_tag, tag).add(bool(result))
            if result:
                report.misses.append(f"benign {result.level} {result.kinds}: {item['t']}")
            continue
        caught, routed = bool(result), bool(result.route)
        right = any(k in result.kinds for k in kinds)
        tier = str(item.get("tier", "route"))
        for key in ("all", kinds[0]):
            rate(report.caught, key).add(caught)
            rate(report.kind_right, key).add(right)
            if tier == "route":
                rate(report.routed, key).add(routed)
        rate(report.by_tier, tier).add(caught)
        for tag in tags:
            rate(report.by_tag, tag).add(caught)
        if not caught:
            report.misses.append(f"missed {kinds} ({tier}): {item['t']}")
        elif tier == "route" and not routed:
            report.misses.append(f"only checked {kinds} ({result.check}): {item['t']}")
    return report


def _row(label: str, cells: Any, width: int = 30) -> str:
    return f"  {label:<24}" + "".join(f"{c!s:>{width}}" for c in cells)


def format_safety(reports: dict[str, SafetyReport], *, show_misses: bool = True) -> str:
    """Several reports (dev, held-out) side by side."""
    rs = list(reports.values())
    lines = [
        "crisis: caught (route or check) / routed at once (items labelled route) / right kind among found",
        _row("kind", reports),
    ]
    kinds = [*sorted({k for r in rs for k in r.caught if k != "all"}), "all"]
    for kind in kinds:
        cells = []
        for r in rs:
            c, ro, k = r.caught.get(kind, Rate()), r.routed.get(kind, Rate()), r.kind_right.get(kind, Rate())
            cells.append(f"{c.value:.2f} / {ro.value:.2f} / {k.value:.2f}  n={c.total}")
        lines.append(_row(kind, cells))
    lines.append("caught per labelled tier")
    lines += [_row(tier, (r.by_tier.get(tier, Rate()) for r in rs)) for tier in ("route", "check")]
    tags = sorted({t for r in rs for t in r.by_tag})
    if tags:
        lines.append("caught per tag")
        lines += [_row(tag, (r.by_tag.get(tag, Rate()) for r in rs)) for tag in tags]
    lines.append("benign statements")
    lines.append(_row("flagged (<= 0.10)", (r.benign_flagged for r in rs)))
    lines.append(_row("routed (<= 0.03)", (r.benign_routed for r in rs)))
    btags = sorted({t for r in rs for t in r.benign_by_tag})
    lines += [_row(f"flagged: {tag}", (r.benign_by_tag.get(tag, Rate()) for r in rs)) for tag in btags]
    for name, r in reports.items():
        m = r.metrics()
        lines.append(
            f"{name}: caught {m['caught']:.3f} (>= 0.98), routed {m['routed']:.3f} (>= 0.90), benign flagged "
            f"{m['benign_flagged']:.3f} (<= 0.10), routed {m['benign_routed']:.3f} (<= 0.03): "
            + ("targets met" if r.passed() else "BELOW TARGET")
        )
    if show_misses:
        lines += _misses(reports)
    return "\n".join(lines)


def _misses(reports: dict[str, SafetyReport] | dict[str, PHReport]) -> list[str]:
    """The misses of the tuning sets only: a held-out miss is never shown, so nobody tunes on it."""
    lines: list[str] = []
    for name, r in reports.items():
        if name == HELD_OUT:
            lines += ["", f"{name}: misses not listed (frozen set: move an item to dev to study it)"]
        elif r.misses:
            lines += ["", f"{name} misses:"] + [f"  {m}" for m in r.misses]
    return lines


# -- Positive Health statements ---------------------------------------------------------------------
@dataclass
class PHReport:
    tagged: Rate = field(default_factory=Rate)  # an expected dimension found, at most two found
    per_dimension: dict[str, Rate] = field(default_factory=dict)
    too_many: int = 0
    misses: list[str] = field(default_factory=list)


# The evaluation sets name the six dimensions in short English keys (written before the ids here).
PH_KEYS = {
    "body": "lichaamsfuncties",
    "mind": "mentaal_welbevinden",
    "meaning": "zingeving",
    "quality": "kwaliteit_van_leven",
    "participation": "meedoen",
    "daily": "dagelijks_functioneren",
}


def ph_dimensions(analyzer: Analyzer, text: str) -> list[str]:
    """The (at most two) dimensions the analyzer gives a general life statement, strongest first."""
    return analyzer.analyze(text).main_domains(2)


def evaluate_ph(analyzer: Analyzer, items: list[dict[str, Any]]) -> PHReport:
    report = PHReport()
    for item in items:
        got = ph_dimensions(analyzer, item["t"])
        wanted = [PH_KEYS.get(d, d) for d in item["dims"]]
        ok = bool(set(got) & set(wanted)) and len(got) <= 2
        report.too_many += len(got) > 2
        report.tagged.add(ok)
        report.per_dimension.setdefault(wanted[0], Rate()).add(ok)
        if not ok:
            report.misses.append(f"{got} != {wanted}: {item['t']}")
    return report


def format_ph(reports: dict[str, PHReport], *, show_misses: bool = True) -> str:
    rs = list(reports.values())
    lines = [
        "Positive Health statements tagged with their dimension (at most two)",
        _row("dimension", reports),
    ]
    dims = sorted({d for r in rs for d in r.per_dimension})
    lines += [_row(dim, (r.per_dimension.get(dim, Rate()) for r in rs)) for dim in dims]
    lines.append(_row("all (>= 0.80)", (r.tagged for r in rs)))
    lines.append(_row("more than two", (r.too_many for r in rs)))
    if show_misses:
        lines += _misses(reports)
    return "\n".join(lines)
