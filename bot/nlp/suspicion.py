"""The safety net's second layer: a small naive Bayes model that only ever asks.

The rules in ``content/nl/lexicon/safety.yaml`` miss statements written in words nobody put in a
list ("de Here mag me komen halen", "twee doosjes, allebei leeg nu"). This layer reads what the
rules found nothing in and, when it looks like a crisis, adds a **check** (one direct question,
never a route and never an alarm by itself). It learns from the dev set only
(``tests/data/safety_dev.yaml``); the held-out set measures it.

Features: words, word pairs and five-letter pieces of the normalised text (so chat spelling and
typos still share most pieces). Model: Bernoulli naive Bayes, crisis against benign, plus one
more over the crisis kinds to choose which question to ask. Training is ``python -m bot nlp
train``; the model is a JSON file next to the rules and records the dev file's SHA-256, so a test
can tell when it is out of date. No aiogram or database imports here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

MODEL_FILE = "safety_model.json"
MIN_COUNT = 2  # a feature seen fewer times in the dev set says nothing
MIN_WORDS = 6  # "hallo, wat is mijn afspraak?", "de nieuwe pillen": too little to go on; rules alone
MIN_WEIGHT = 0.4  # smaller log-odds are left out of the stored model (it stays small and fast)
MIN_KIND_WEIGHT = 1.0
# The threshold is the lowest score that keeps this share of benign statements flagged by this layer
# alone in cross-validation (the rules flag some too; together they stay near the 10 % target).
TARGET_BENIGN_FLAGGED = 0.04
FOLDS = 5
_NOT_WORD = re.compile(r"[^a-z0-9 ]+")


def features(text: str) -> set[str]:
    plain = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    words = _NOT_WORD.sub(" ", plain).split()
    found = set(words) | {f"{a}_{b}" for a, b in pairwise(words)}
    padded = f" {' '.join(words)} "
    found |= {"#" + padded[i : i + 5] for i in range(len(padded) - 4)}
    return found


@dataclass
class SuspicionModel:
    """Log-odds per feature (crisis vs benign), per-kind log-probabilities, and the threshold."""

    prior: float
    weights: dict[str, float]
    kinds: dict[str, dict[str, float]]
    kind_priors: dict[str, float]
    threshold: float
    trained_on: str = ""  # SHA-256 of the dev file
    stats: dict[str, Any] = field(default_factory=dict)

    def score(self, text: str) -> float:
        return self.score_features(features(text))

    def score_features(self, feats: set[str]) -> float:
        return self.prior + sum(self.weights.get(f, 0.0) for f in feats)

    def suspects(self, text: str) -> tuple[str, float] | None:
        """The kind to ask about and the score, or None (the text's features are read once)."""
        if len(text.split()) < MIN_WORDS:
            return None
        feats = features(text)
        score = self.score_features(feats)
        if score <= self.threshold:
            return None
        kind = max(
            self.kind_priors,
            key=lambda k: self.kind_priors[k] + sum(self.kinds[k].get(f, 0.0) for f in feats),
        )
        return kind, score

    # -- storage ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> SuspicionModel | None:
        if not path.exists():
            return None
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
        return cls(**data)

    def save(self, path: Path) -> None:
        data = {
            "prior": self.prior,
            "threshold": self.threshold,
            "trained_on": self.trained_on,
            "stats": self.stats,
            "kind_priors": self.kind_priors,
            "weights": {f: round(w, 2) for f, w in sorted(self.weights.items()) if abs(w) >= MIN_WEIGHT},
            "kinds": {
                k: {f: round(w, 2) for f, w in sorted(ws.items()) if abs(w) >= MIN_KIND_WEIGHT}
                for k, ws in sorted(self.kinds.items())
            },
        }
        path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


def _log_odds(pos: Sequence[set[str]], neg: Sequence[set[str]]) -> tuple[float, dict[str, float]]:
    if not pos or not neg:
        return 0.0, {}  # nothing to tell apart (one kind only, in a small set)
    seen_pos: Counter[str] = Counter(f for fs in pos for f in fs)
    seen_neg: Counter[str] = Counter(f for fs in neg for f in fs)
    weights = {}
    for f in set(seen_pos) | set(seen_neg):
        if seen_pos[f] + seen_neg[f] < MIN_COUNT:
            continue
        p = (seen_pos[f] + 0.5) / (len(pos) + 1)
        q = (seen_neg[f] + 0.5) / (len(neg) + 1)
        weights[f] = math.log(p / q)
    return math.log(len(pos) / len(neg)), weights


def _fit(items: Sequence[tuple[set[str], list[str]]], threshold: float = 0.0) -> SuspicionModel:
    crisis = [fs for fs, kinds in items if kinds]
    benign = [fs for fs, kinds in items if not kinds]
    prior, weights = _log_odds(crisis, benign)
    per_kind: dict[str, list[set[str]]] = {}
    for fs, kinds in items:
        for k in kinds:
            per_kind.setdefault(k, []).append(fs)
    kind_weights: dict[str, dict[str, float]] = {}
    kind_priors: dict[str, float] = {}
    for k, docs in per_kind.items():
        others = [fs for fs, ks in items if ks and k not in ks]
        kind_priors[k], kind_weights[k] = _log_odds(docs, others)
    return SuspicionModel(prior, weights, kind_weights, kind_priors, threshold)


def train(items: Iterable[dict[str, Any]], expected: Any, trained_on: str = "") -> SuspicionModel:
    """Fit on labelled statements (``expected(item)`` gives the kinds, [] for benign). The threshold
    is chosen by cross-validation on the same items: the lowest score that keeps benign statements
    flagged (by this layer alone) at or under the target in the held-back folds."""
    data = [(features(str(i["t"])), list(expected(i))) for i in items]
    scored: list[tuple[float, bool]] = []
    for fold in range(FOLDS):
        fit = _fit([d for n, d in enumerate(data) if n % FOLDS != fold])
        scored += [(fit.score_features(fs), bool(ks)) for n, (fs, ks) in enumerate(data) if n % FOLDS == fold]
    benign = sorted((s for s, crisis in scored if not crisis), reverse=True)
    allowed = int(TARGET_BENIGN_FLAGGED * len(benign))
    # Never below even odds: a statement must look more like a crisis than not.
    threshold = max(benign[allowed] if allowed < len(benign) else 0.0, 0.0)
    caught = sum(1 for s, crisis in scored if crisis and s > threshold) / max(1, sum(c for _, c in scored))
    model = _fit(data, threshold)
    model.trained_on = trained_on
    model.stats = {
        "items": len(data),
        "cv_crisis_caught_alone": round(caught, 3),
        "cv_benign_flagged_alone": round(sum(1 for s in benign if s > threshold) / max(1, len(benign)), 3),
    }
    return model


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(paths: Sequence[Path]) -> str:
    """One digest for the files a model learned from, so a test can tell it is out of date."""
    return hashlib.sha256(" ".join(file_sha256(p) for p in paths).encode()).hexdigest()


def ordinary(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everyday statements from the other dev sets (Positive Health, domains), as benign examples:
    the model must learn that "ik slaap slecht" or "ik kom de deur niet uit" is no crisis."""
    return [{"t": i["t"], "kind": "none"} for i in items if not i.get("rf")]
