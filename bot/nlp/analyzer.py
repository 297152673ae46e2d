"""Dutch free-text analysis: domains, themes, topics with context, and red flags.

Pipeline: spaCy ``blank("nl")`` tokeniser + sentencizer (abbreviations stay whole) ->
spelling normalisation (``lexicon/spelling.yaml``) -> lemmas (simplemma; spaCy's blank Dutch
pipeline has no lemma tables) -> lexicon matching (``lexicon/domains.yaml``) -> ConText-style
context rules (``lexicon/context.yaml``). Red flags (``lexicon/redflags.yaml``) are a separate
layer on the normalised text: no negation rule ever touches them.

No aiogram or database imports here. Everything Dutch is data in ``content/nl/lexicon/``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import simplemma
import spacy
import yaml

from bot.content import DEFAULT_CONTENT_DIR

CONTEXT_TYPES = ("negated", "historical", "hypothetical", "other_person")


@lru_cache(maxsize=50_000)
def lemma(word: str) -> str:
    """The Dutch lemma of a lower-case word (simplemma, cached)."""
    if not word or not word[0].isalpha():
        return word
    return simplemma.lemmatize(word, lang="nl").lower()


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def edit_distance_at_most_one(a: str, b: str) -> bool:
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = j = 0
    edits = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            i += 1
            j += 1
            continue
        edits += 1
        if edits > 1:
            return False
        if len(a) == len(b):
            i += 1
        j += 1
    return edits + (len(b) - j) + (len(a) - i) <= 1


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
    red_flags: list[str] = field(default_factory=list)

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
        flags = load("redflags.yaml")
        self.fuzzy: list[str] = [strip_accents(w.lower()) for w in flags.get("fuzzy", [])]
        self.flags: dict[str, dict[str, Any]] = {}
        for flag, spec in flags["flags"].items():
            self.flags[flag] = {
                "route": spec["route"],
                "patterns": [re.compile(p) for p in spec["patterns"]],
                "exclude": [re.compile(p) for p in spec.get("exclude", [])],
            }

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

    # -- the public API -------------------------------------------------------------------
    def analyze(self, text: str) -> Analysis:
        result = Analysis(text=text)
        lines = [line for line in text.splitlines() if line.strip()]  # a new line is a new sentence
        for doc in self.nlp.pipe(lines):
            for sent in doc.sents:
                result.topics += self._topics(self._tokens(sent), sent.text.strip())
        result.red_flags = self.red_flags(text)
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

    def red_flags(self, text: str) -> list[str]:
        """Flags found anywhere in the text. Only reviewed benign idioms (``exclude``) are blanked."""
        norm = self.normalised_text(text)
        found = []
        for flag, spec in self.lexicon.flags.items():
            masked = norm
            for pattern in spec["exclude"]:
                masked = pattern.sub(lambda m: " " * len(m.group(0)), masked)
            if any(p.search(masked) for p in spec["patterns"]):
                found.append(flag)
        return found

    def route(self, flag: str) -> str:
        return str(self.lexicon.flags[flag]["route"])

    def normalised_text(self, text: str) -> str:
        """Lower case, accents off, informal spelling fixed, near-misses of key words repaired."""
        words = []
        for raw in re.findall(r"[\w'’]+|[.!?,;]", strip_accents(text.lower())):
            for word in self.lexicon.normalise_word(raw).split():
                if len(word) >= 7 and word not in self.lexicon.fuzzy:
                    word = next((k for k in self.lexicon.fuzzy if edit_distance_at_most_one(word, k)), word)
                words.append(word)
        return " ".join(words)

    # -- internals --------------------------------------------------------------------------
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
