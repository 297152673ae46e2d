"""Dutch free-text analysis: domains, themes, topics with context, and red flags.

Pipeline: spaCy ``blank("nl")`` tokeniser + sentencizer (abbreviations stay whole) ->
spelling normalisation (``lexicon/spelling.yaml``) -> lemmas (simplemma; spaCy's blank Dutch
pipeline has no lemma tables) -> lexicon matching (``lexicon/domains.yaml``) -> ConText-style
context rules (``lexicon/context.yaml``). The crisis safety net (``lexicon/safety.yaml``,
``bot/nlp/safety.py``) is a separate layer on the same sentences: no negation rule ever touches it.

No aiogram or database imports here. Everything Dutch is data in ``content/nl/lexicon/``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import simplemma
import spacy
import yaml

from bot.content import DEFAULT_CONTENT_DIR
from bot.nlp.safety import NONE, SafeTok, SafetyLexicon, SafetyMatcher, SafetyResult
from bot.nlp.suspicion import MODEL_FILE, SuspicionModel

CONTEXT_TYPES = ("negated", "historical", "hypothetical", "other_person")


@lru_cache(maxsize=50_000)
def lemma(word: str) -> str:
    """The Dutch lemma of a lower-case word (simplemma, cached)."""
    if not word or not word[0].isalpha():
        return word
    return simplemma.lemmatize(word, lang="nl").lower()


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@dataclass
class Topic:
    text: str
    lemma: str
    theme: str | None
    domain: str | None
    negated: bool = False
    historical: bool = False
    hypothetical: bool = False
    other_person: bool = False
    sentence: str = ""
    also_domains: list[str] = field(default_factory=list)  # other dimensions the same words touch

    @property
    def present(self) -> bool:
        """A current problem of the patient: not negated, not past, not hypothetical, their own."""
        return not (self.negated or self.historical or self.hypothetical or self.other_person)


@dataclass
class Analysis:
    text: str
    domains: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)
    topics: list[Topic] = field(default_factory=list)
    red_flags: list[str] = field(default_factory=list)  # kinds routed at once
    checks: list[str] = field(default_factory=list)  # kinds to ask one direct question about
    safety: str = NONE  # "route", "check" or "none"

    def main_domains(self, top: int = 2) -> list[str]:
        """The dimensions the words weigh most on (a word's own dimension 1, a side dimension 0.5),
        strongest first, ties in order of appearance."""
        score: dict[str, float] = {}
        for topic in self.topics:
            weight = float(len(topic.lemma.split()))  # "zin in de dag" says more than "dag"
            if topic.domain:
                score[topic.domain] = score.get(topic.domain, 0.0) + weight
            for other in topic.also_domains:
                score[other] = score.get(other, 0.0) + weight / 2
        order = {d: i for i, d in enumerate(self.domains)}
        return sorted(score, key=lambda d: (-score[d], order.get(d, len(order))))[:top]

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "domains": self.domains,
            "themes": self.themes,
            "topics": [
                {k: v for k, v in asdict(t).items() if k in ("text", "lemma", *CONTEXT_TYPES)}
                for t in self.topics
            ],
            "red_flags": self.red_flags,
            "checks": self.checks,
            "safety": self.safety,
        }


@dataclass(frozen=True)
class Term:
    lemmas: tuple[str, ...]
    theme: str | None
    domain: str
    wildcard: str = ""  # "prefix", "suffix", "infix" or ""


@dataclass(frozen=True)
class Trigger:
    lemmas: tuple[str, ...]
    kind: str
    direction: str
    window: int


@dataclass
class _Tok:
    text: str
    norm: str
    lemma: str


class Lexicon:
    """The word lists and rules from ``content/nl/lexicon``, compiled once."""

    def __init__(self, folder: Path) -> None:
        def load(name: str) -> Any:
            with (folder / name).open(encoding="utf-8") as fh:
                return yaml.safe_load(fh)

        self.spelling: dict[str, str] = {
            str(k).lower(): str(v).lower() for k, v in load("spelling.yaml")["words"].items()
        }
        domains = load("domains.yaml")
        self.theme_dimension: dict[str, str] = {}
        terms: list[Term] = []
        for theme, spec in domains["themes"].items():
            self.theme_dimension[theme] = spec["dimension"]
            terms += [self._term(t, theme, spec["dimension"]) for t in spec["terms"]]
        for dimension, words in domains["dimensions"].items():
            terms += [self._term(t, None, dimension) for t in words]
        self.exact: dict[str, list[Term]] = {}
        self.wild: list[Term] = []
        for term in terms:
            if term.wildcard:
                self.wild.append(term)
            else:
                self.exact.setdefault(term.lemmas[0], []).append(term)
        context = load("context.yaml")
        self.triggers: dict[str, list[Trigger]] = {}
        for kind, items in context["triggers"].items():
            for item in items:
                trig = Trigger(self.lemmas_of(item["phrase"]), kind, item["direction"], int(item["window"]))
                self.triggers.setdefault(trig.lemmas[0], []).append(trig)
        self.terminators = {self.lemmas_of(t)[0] if t.isalpha() else t for t in context["terminators"]}
        self.pseudo = [self.lemmas_of(p) for p in context["pseudo"]]
        self.safety = SafetyLexicon(folder / "safety.yaml")

    def normalise_word(self, word: str) -> str:
        low = word.lower().replace("’", "'")
        return self.spelling.get(low, low)

    def lemmas_of(self, phrase: str) -> tuple[str, ...]:
        words: list[str] = []
        for raw in phrase.lower().split():
            words += self.normalise_word(raw).split()
        return tuple(lemma(w) for w in words)

    def _term(self, raw: str, theme: str | None, domain: str) -> Term:
        text = str(raw)
        wildcard = ""
        if text.startswith("*") and text.endswith("*"):
            wildcard, text = "infix", text.strip("*")
        elif text.startswith("*"):
            wildcard, text = "suffix", text[1:]
        elif text.endswith("*"):
            wildcard, text = "prefix", text[:-1]
        lemmas = (text.lower(),) if wildcard else self.lemmas_of(text)
        return Term(lemmas, theme, domain, wildcard)


class Analyzer:
    def __init__(self, content_dir: Path = DEFAULT_CONTENT_DIR) -> None:
        self.lexicon = Lexicon(content_dir / "lexicon")
        self.nlp = spacy.blank("nl")
        self.nlp.add_pipe("sentencizer")
        particles = self.lexicon.safety.particles
        self.safety_matcher = SafetyMatcher(self.lexicon.safety, lemma, particles)
        # The second layer (learned from the dev set): only asks, where the rules found nothing.
        self.suspicion = SuspicionModel.load(content_dir / "lexicon" / MODEL_FILE)

    # -- the public API -------------------------------------------------------------------
    def analyze(self, text: str) -> Analysis:
        result = Analysis(text=text)
        safe_sentences = []
        for sent in self._sentences(text):
            result.topics += self._topics(self._tokens(sent), sent.text.strip())
            safe_sentences.append(self._safe_tokens(sent))
        safety = self._second_look(text, self.safety_matcher.assess(safe_sentences))
        result.red_flags, result.checks, result.safety = safety.route, safety.check, safety.level
        seen_domains: dict[str, None] = {}
        seen_themes: dict[str, None] = {}
        for topic in result.topics:
            for domain in (topic.domain, *topic.also_domains):
                if domain:
                    seen_domains[domain] = None
            if topic.theme:
                seen_themes[topic.theme] = None
        result.domains = list(seen_domains)
        result.themes = list(seen_themes)
        return result

    def assess(self, text: str) -> SafetyResult:
        """The safety net alone: kinds to route at once and kinds to ask about first."""
        found = self.safety_matcher.assess([self._safe_tokens(s) for s in self._sentences(text)])
        return self._second_look(text, found)

    def _second_look(self, text: str, found: SafetyResult) -> SafetyResult:
        """Nothing found by the rules, but the model finds it looks like a crisis: one question."""
        if found or self.suspicion is None:
            return found
        suspected = self.suspicion.suspects(text)
        if suspected is not None:
            kind, score = suspected
            found.check.append(kind)
            found.hits.append((kind, "check", f"model {score:.1f}"))
        return found

    def route(self, flag: str) -> str:
        return self.lexicon.safety.routes[flag]

    # -- internals --------------------------------------------------------------------------
    def _sentences(self, text: str) -> Iterator[Any]:
        lines = [line for line in text.splitlines() if line.strip()]  # a new line is a new sentence
        for doc in self.nlp.pipe(lines):
            yield from doc.sents

    def _safe_tokens(self, sent: Any) -> list[SafeTok]:
        """Lower case, accents off, chat spelling put right; each word with its lemma and keys."""
        toks = []
        for token in sent:
            if token.is_space or token.is_punct:
                continue
            for word in self.lexicon.normalise_word(strip_accents(token.text)).split():
                toks.append(self.safety_matcher.token(word))
        return toks

    def _tokens(self, sent: Any) -> list[_Tok]:
        toks = []
        for token in sent:
            if token.is_space:
                continue
            for part in self.lexicon.normalise_word(token.text).split():
                toks.append(_Tok(token.text, part, lemma(part)))
        return toks

    def _matches(self, toks: list[_Tok]) -> list[tuple[int, int, Term]]:
        found: list[tuple[int, int, Term]] = []
        lemmas = [t.lemma for t in toks]
        for i, tok in enumerate(toks):
            for term in self.lexicon.exact.get(tok.lemma, ()):
                n = len(term.lemmas)
                if tuple(lemmas[i : i + n]) == term.lemmas:
                    found.append((i, i + n, term))
            for term in self.lexicon.wild:
                word, stem = tok.norm, term.lemmas[0]
                if len(word) <= len(stem):
                    continue
                if (
                    (term.wildcard == "prefix" and word.startswith(stem))
                    or (term.wildcard == "suffix" and word.endswith(stem))
                    or (term.wildcard == "infix" and stem in word)
                ):
                    found.append((i, i + 1, term))
        # A match inside a longer one yields to it ("zorg" inside "zorg voor"); equal spans stay.
        found.sort(key=lambda m: (m[0], -(m[1] - m[0])))
        kept: list[tuple[int, int, Term]] = []
        for s, e, term in found:
            if any(ks <= s and e <= ke and (ke - ks) > (e - s) for ks, ke, _ in kept):
                continue
            kept.append((s, e, term))
        return kept

    def _topics(self, toks: list[_Tok], sentence: str) -> list[Topic]:
        matches = self._matches(toks)
        if not matches:
            return []
        triggers = self._triggers(toks)
        by_span: dict[tuple[int, int], Topic] = {}
        for s, e, term in matches:
            topic = by_span.get((s, e))
            if topic is None:
                span_text = sentence_text(toks, s, e)
                topic = Topic(
                    text=span_text,
                    lemma=" ".join(t.lemma for t in toks[s:e]),
                    theme=None,
                    domain=None,
                    sentence=sentence,
                )
                for kind in CONTEXT_TYPES:
                    setattr(topic, kind, self._in_scope(toks, s, e, triggers, kind))
                by_span[(s, e)] = topic
            if term.theme and not topic.theme:
                if topic.domain:
                    topic.also_domains.append(topic.domain)
                topic.theme = term.theme
                topic.domain = self.lexicon.theme_dimension[term.theme]
            elif not topic.domain:
                topic.domain = term.domain
            elif term.domain != topic.domain:
                topic.also_domains.append(term.domain)
        return list(by_span.values())

    def _triggers(self, toks: list[_Tok]) -> list[tuple[int, int, Trigger]]:
        lemmas = [t.lemma for t in toks]
        blocked: set[int] = set()
        for pseudo in self.lexicon.pseudo:
            n = len(pseudo)
            for i in range(len(lemmas) - n + 1):
                if tuple(lemmas[i : i + n]) == pseudo:
                    blocked.update(range(i, i + n))
        out = []
        for i, lem in enumerate(lemmas):
            for trig in self.lexicon.triggers.get(lem, ()):
                n = len(trig.lemmas)
                if tuple(lemmas[i : i + n]) == trig.lemmas and not blocked.intersection(range(i, i + n)):
                    out.append((i, i + n, trig))
        return out

    def _in_scope(
        self, toks: list[_Tok], s: int, e: int, triggers: list[tuple[int, int, Trigger]], kind: str
    ) -> bool:
        terms = self.lexicon.terminators
        for ts, te, trig in triggers:
            if trig.kind != kind or (ts < e and s < te):
                continue
            if te <= s and trig.direction in ("forward", "both"):
                gap = range(te, s)
            elif ts >= e and trig.direction in ("backward", "both"):
                gap = range(e, ts)
            else:
                continue
            if len(gap) < trig.window and not any(
                toks[g].lemma in terms or toks[g].norm in terms for g in gap
            ):
                return True
        return False


@lru_cache(maxsize=4)
def shared_analyzer(content_dir: Path = DEFAULT_CONTENT_DIR) -> Analyzer:
    """One analyzer per content folder and process: it is read-only once built."""
    return Analyzer(content_dir)


def lazy_analyzer(content_dir: Path = DEFAULT_CONTENT_DIR) -> Callable[[], Analyzer]:
    """An analyzer built on first use (loading spaCy takes a second or two)."""
    return lambda: shared_analyzer(content_dir)


def sentence_text(toks: list[_Tok], s: int, e: int) -> str:
    """The surface words of a span (tokens keep their original spelling)."""
    words: list[str] = []
    for tok in toks[s:e]:
        if not words or words[-1] != tok.text:
            words.append(tok.text)
    return " ".join(words)
