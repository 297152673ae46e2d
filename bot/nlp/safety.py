"""The crisis safety net: order-free co-occurrence of concepts, in two tiers.

Everything Dutch is data in ``content/nl/lexicon/safety.yaml``:

- **concepts**: named word sets (``MEDICINE: ["*pil", "*pillen", tablet*, oxazepam, ...]``). An entry
  is a word (matched on the normalised form *and* the lemma of a token, so every tense and plural
  counts), ``stem*`` / ``*stem`` / ``*stem*`` (compounds: ``slaappillen``, ``zelfmoordgedachten``),
  ``=word`` (the surface form only: ``=borst`` but not ``borsten``) or several words in a row.
  Long entries also match with one typo.
- **numbers**: named ranges (``SUGAR_VERY_LOW: [0.5, 3.5]``); a number token in range is that concept.
- **kinds**: the categories of published triage, each with its ``route_to`` and its rules per tier. A rule
  ``"INGEST + MEDICINE + AMOUNT - COOKING - MEDIA | window 10"`` fires when every concept after ``+`` occurs
  within ``window`` tokens of one sentence, in any order, and no concept after ``-`` is in it.
- **benign**: reviewed idioms (regular expressions on the normalised sentence) whose words are taken
  out before matching ("doodmoe", "ik lach me dood").
- **modifiers**: clearly historical, other people's past, films and news: a hit becomes ``check`` or
  ``none`` for the kinds a modifier names when its condition holds *near the hit* (within the
  modifier's window before and after the words that fired), so "mijn vader overleed aan een
  hartaanval en nu heb ik pijn op de borst" keeps its route: the past is about other words.
  A modifier with ``later: N`` is read in one of the next N sentences instead, a sentence that fires
  nothing itself ("Ik had een hartinfarct. Dat is nu twintig jaar geleden.").

Negation is not a modifier: "ik wil niet dood" keeps its flag. Separable verbs are re-joined within
a sentence ("neem ... in" -> ``innemen``), so rules may use either the joined or the plain verb.
No aiogram or database imports here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise, product
from pathlib import Path
from typing import Any

import yaml
from wordfreq import zipf_frequency

ROUTE, CHECK, NONE = "route", "check", "none"
TIERS = (ROUTE, CHECK)
_RANK = {NONE: 0, CHECK: 1, ROUTE: 2}
DEFAULT_WINDOW = 8
END = "END"  # built-in concept: the end of the sentence
CHECKS_MAKE_A_ROUTE = 2  # different check signals for one kind in one message
MIN_TYPO_WORD = 5  # shorter words are never repaired
KNOWN_WORD_ZIPF = 2.0  # wordfreq: at or above this a word is real Dutch, not a typo
_NUMBER = re.compile(r"^(\d{1,4}(?:[.,]\d{1,2})?)(?:°c?|°|c|mmol\w*|graden)?$")
_ORDINAL = re.compile(r"^\d{1,3}(?:e|ste|de)$")  # "op mijn 40e", "op haar 68ste"
ORDINAL_KEY = "#ord"  # lexicon entries may name it: "#ord" is any such ordinal
PHRASE_WORD = "#phrase"  # what a word means that occurs only inside phrases (for typo repair)
_SPLIT_PARTICLE = re.compile(r"^(?P<p>[a-z]+)_(?P<v>[a-z]+)$")


@dataclass(frozen=True)
class Rule:
    kind: str
    tier: str
    needs: tuple[str, ...]
    unless: tuple[str, ...] = ()
    window: int = DEFAULT_WINDOW
    source: str = ""

    @classmethod
    def parse(cls, kind: str, tier: str, spec: str) -> Rule:
        """``"A + B - C - D | window 6"``: A and B near each other; no C and no D in the sentence."""
        body, _, options = spec.partition("|")
        window = _options(spec, options, ("window",)).get("window", DEFAULT_WINDOW)
        needs_part, *unless_parts = body.split(" - ")
        needs = tuple(c.strip() for c in needs_part.split("+") if c.strip())
        unless = tuple(c.strip() for c in unless_parts)
        if not needs or any(not c or "+" in c for c in unless):
            raise ValueError(f"rule {spec!r}: write 'A + B - C - D' (every concept after ' - ' alone)")
        return cls(kind, tier, needs, unless, window, spec)


def _options(spec: str, options: str, allowed: tuple[str, ...]) -> dict[str, int]:
    """``"window 6, near 4"`` -> ``{"window": 6, "near": 4}``; an unknown option is an error."""
    found = {}
    for option in filter(None, (o.strip() for o in options.split(","))):
        name, _, value = option.partition(" ")
        if name not in allowed:
            raise ValueError(f"unknown option {name!r} in {spec!r}")
        found[name] = int(value)
    return found


@dataclass(frozen=True)
class Modifier:
    name: str
    needs: tuple[str, ...]
    unless: tuple[str, ...]
    kinds: frozenset[str]
    then: str  # "check" (a route becomes a check) or "none"
    window: int = DEFAULT_WINDOW  # how far from the hit the condition is read
    near: int = DEFAULT_WINDOW  # how far from the hit an "unless" concept ("nu", "weer") still counts
    # later > 0: the condition is read in one of the next ``later`` sentences of the message, one
    # that fires nothing itself ("Ik had pijn op de borst. Dat is nu twintig jaar geleden."); the
    # sentence of the hit holds every ``needs_here`` concept (a verb in the past) and no
    # ``unless_here`` concept ("nu"), and no sentence after the condition holds an ``unless_after``
    # concept ("Nu heb ik het weer.").
    later: int = 0
    needs_here: tuple[str, ...] = ()
    unless_here: tuple[str, ...] = ()
    unless_after: tuple[str, ...] = ()

    def holds(self, positions: dict[str, list[int]], span: tuple[int, int]) -> bool:
        def near(concept: str, reach: int) -> bool:
            return any(span[0] - reach <= p <= span[1] + reach for p in positions.get(concept, ()))

        return all(near(c, self.window) for c in self.needs) and not any(
            near(c, self.near) for c in self.unless
        )


@dataclass
class SafetyResult:
    """Kinds to route at once, and kinds to ask about first (never both for one kind)."""

    route: list[str] = field(default_factory=list)
    check: list[str] = field(default_factory=list)
    hits: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, tier, rule) for reports

    @property
    def level(self) -> str:
        return ROUTE if self.route else CHECK if self.check else NONE

    @property
    def kinds(self) -> list[str]:
        return [*self.route, *self.check]

    def __bool__(self) -> bool:
        return bool(self.route or self.check)


@dataclass(frozen=True)
class SafeTok:
    """One word of a sentence, with every key a concept entry may match."""

    norm: str
    keys: tuple[str, ...]
    number: float | None = None


class SafetyLexicon:
    """``safety.yaml`` compiled once: concept lookup per word is cached."""

    def __init__(self, path: Path) -> None:
        with path.open(encoding="utf-8") as fh:
            data: dict[str, Any] = yaml.safe_load(fh)
        self.groups: dict[str, list[str]] = {k: list(v) for k, v in (data.get("groups") or {}).items()}
        self.particles: list[str] = [str(p) for p in data.get("particles") or []]
        # "2 uur", "30 jaar", "600 euro": a number before one of these words is no reading.
        self.not_a_reading = frozenset(str(w) for w in data.get("not_a_reading") or [])
        answers = data.get("answers") or {}
        self.answers: dict[str, bool] = {_plain(str(w)): True for w in answers.get("yes") or []}
        self.answers |= {_plain(str(w)): False for w in answers.get("no") or []}
        self.routes: dict[str, str] = {}
        self.rules: list[Rule] = []
        for kind, spec in data["kinds"].items():
            self.routes[kind] = str(spec["route_to"])
            for tier in TIERS:
                self.rules += [Rule.parse(kind, tier, str(r)) for r in spec.get(tier) or []]
        self.exact: dict[str, set[str]] = {}
        self.surface: dict[str, set[str]] = {}
        # first word -> (words, concept, exact): exact ("=is dood") matches the written forms only
        self.phrases: dict[str, list[tuple[tuple[str, ...], str, bool]]] = {}
        self.prefix: list[tuple[str, str]] = []
        self.suffix: list[tuple[str, str]] = []
        self.infix: list[tuple[str, str]] = []
        for concept, entries in data["concepts"].items():
            for entry in entries:
                self._add(concept, str(entry).lower())
        self.numbers: dict[str, tuple[float, float]] = {
            name: (float(lo), float(hi)) for name, (lo, hi) in (data.get("numbers") or {}).items()
        }
        self.benign = [re.compile(p) for p in data.get("benign") or []]
        self.rules_by_first: dict[str, list[Rule]] = {}
        for rule in self.rules:
            self.rules_by_first.setdefault(rule.needs[0], []).append(rule)
        self.modifiers = [self._modifier(name, spec) for name, spec in (data.get("modifiers") or {}).items()]
        # Words inside phrases ("niet veilig") can be typed wrong too: they are repair targets.
        self.phrase_words = frozenset(
            word for entries in self.phrases.values() for words, _, _ in entries for word in words
        )
        known = set(self.exact.keys()) | set(self.surface.keys()) | self.phrase_words
        self.known_concepts = {c for cs in self.exact.values() for c in cs}
        self.known_concepts |= {c for cs in self.surface.values() for c in cs}
        self.known_concepts |= {c for entries in self.phrases.values() for _, c, _ in entries}
        self.known_concepts |= {c for _, c in (*self.prefix, *self.suffix, *self.infix)}
        self.known_concepts |= {*self.numbers, END}
        self._check_names()
        # Typo repair: long single words, indexed by their one-letter deletions (symmetric delete).
        self._deletions: dict[str, set[str]] = {}
        for word in known:
            if len(word) >= 6 and word.isalpha():
                for variant in (word, *_deletions(word)):
                    self._deletions.setdefault(variant, set()).add(word)
        self.vocabulary = known
        # Starts of compounds ("zelfmoord*", "benauwd*") for typos inside the first part.
        self._stems = [stem for stem, _ in self.prefix if len(stem) >= 6 and stem.isalpha()]

    def _add(self, concept: str, entry: str) -> None:
        if " " in entry:  # several words in a row, in any of their forms; "=..." as written only
            words = tuple(entry.lstrip("=").split())
            self.phrases.setdefault(words[0], []).append((words, concept, entry.startswith("=")))
        elif entry.startswith("=") and len(entry) > 1:
            self.surface.setdefault(entry[1:], set()).add(concept)
        elif entry.startswith("*") and entry.endswith("*") and len(entry) > 2:
            self.infix.append((entry.strip("*"), concept))
        elif entry.startswith("*") and len(entry) > 1:
            self.suffix.append((entry[1:], concept))
        elif entry.endswith("*") and len(entry) > 1:
            self.prefix.append((entry[:-1], concept))
        else:
            self.exact.setdefault(entry, set()).add(concept)

    def _modifier(self, name: str, spec: dict[str, Any]) -> Modifier:
        """``if: "PAST_TIME - NOW | window 16, near 6"``: the past within 16 words of the hit, and no
        "nu" within 6 of it."""
        condition = str(spec["if"])
        body, _, options = condition.partition("|")
        reach = _options(condition, options, ("window", "near"))
        later = int(spec.get("later", 0))
        needs_here = tuple(str(c) for c in spec.get("needs_here") or ())
        unless_here = tuple(str(c) for c in spec.get("unless_here") or ())
        unless_after = tuple(str(c) for c in spec.get("unless_after") or ())
        rule = Rule.parse("", "", body)
        kinds: set[str] = set()
        for item in spec["kinds"]:
            kinds.update(self.groups.get(item, [item]))
        then = str(spec["then"])
        if then not in (ROUTE, CHECK, NONE):
            raise ValueError(f"modifier {name}: then must be route, check or none")
        window = reach.get("window", DEFAULT_WINDOW)
        return Modifier(
            name,
            rule.needs,
            rule.unless,
            frozenset(kinds),
            then,
            window,
            reach.get("near", window),
            later,
            needs_here,
            unless_here,
            unless_after,
        )

    def _check_names(self) -> None:
        """A typo in a concept name would silently disable a rule: refuse to load instead."""
        for rule in self.rules:
            for concept in (*rule.needs, *rule.unless):
                if concept not in self.known_concepts:
                    raise ValueError(f"rule {rule.source!r} of {rule.kind} names unknown concept {concept}")
        for modifier in self.modifiers:
            extra = (*modifier.needs_here, *modifier.unless_here, *modifier.unless_after)
            for concept in (*modifier.needs, *modifier.unless, *extra):
                if concept not in self.known_concepts:
                    raise ValueError(f"modifier {modifier.name} names unknown concept {concept}")
            for kind in modifier.kinds:
                if kind not in self.routes:
                    raise ValueError(f"modifier {modifier.name} names unknown kind {kind}")

    # -- per word (cached: the same words come back all the time) ------------------------------
    @lru_cache(maxsize=100_000)  # noqa: B019 - one lexicon per process, kept for its lifetime
    def concepts_of(self, key: str) -> frozenset[str]:
        found = set(self.exact.get(key, ()))
        for stem, concept in self.prefix:
            if key.startswith(stem):
                found.add(concept)
        for stem, concept in self.suffix:
            if key.endswith(stem):
                found.add(concept)
        for stem, concept in self.infix:
            if stem in key:
                found.add(concept)
        return frozenset(found)

    @lru_cache(maxsize=100_000)  # noqa: B019
    def repair(self, word: str) -> str | None:
        """The lexicon word one typo away (same first letter): a whole word ("benuwd" -> "benauwd"), or
        the start of a compound or longer form ("zelfmoorplannen" -> "zelfmoordplannen", "benawder" ->
        "benauwder"). Several candidates count only when they mean the same. A real Dutch word is never
        "repaired" into another ("gestopt" is not "gestompt")."""
        if len(word) < MIN_TYPO_WORD or not word.isalpha() or word in self.vocabulary:
            return None
        if zipf_frequency(word, "nl") >= KNOWN_WORD_ZIPF:
            return None
        candidates: set[str] = set()
        for variant in (word, *_deletions(word)):
            candidates |= self._deletions.get(variant, set())
        for stem in self._stems:
            for variant in _deletions(stem):
                if word.startswith(variant):
                    candidates.add(stem + word[len(variant) :])
        candidates = {c for c in candidates if c[0] == word[0] and c != word}
        # The likeliest typo first: a letter left out ("geslgen" -> "geslagen"), then one too many,
        # then one letter for another ("geslgen" is also "gelegen" with one letter changed).
        dropped = {c for c in candidates if word in _deletions(c)}
        extra = {c for c in candidates if c in _deletions(word)}
        for group in (dropped, extra, candidates):
            meaning = {c: self._meaning(c) for c in group}
            if meaning:
                break
        if not meaning or not frozenset.intersection(*(frozenset(m) for m in meaning.values())):
            return None  # nothing, or words that mean different things ("docter": dochter or dotter)
        return max(sorted(meaning), key=lambda c: len(meaning[c]))

    def _meaning(self, word: str) -> frozenset[str]:
        """The concepts of a word; one that only occurs inside phrases ("niet veilig") means: part
        of a phrase."""
        phrase = {PHRASE_WORD} if word in self.phrase_words else set()
        return self.concepts_of(word) | self.surface.get(word, set()) | phrase


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def typed_answer(lexicon: SafetyLexicon, text: str) -> bool | None:
    """A typed yes (True) or no (False) to a check question; None for anything else."""
    return lexicon.answers.get(_plain(text))


def _deletions(word: str) -> Iterable[str]:
    return (word[:i] + word[i + 1 :] for i in range(len(word)))


class SafetyMatcher:
    """Assesses sentences of normalised words (the analyzer does tokenising and spelling)."""

    def __init__(self, lexicon: SafetyLexicon, lemma: Any, particles: Iterable[str]) -> None:
        self.lexicon = lexicon
        self._lemma = lemma
        self.particles = frozenset(particles)
        # Phrases match in every form of their words ("zegt niks" also as "zei niks"): index each phrase
        # under every key of its first two words ("niet" starts dozens), and keep every key of each word.
        self._phrases: dict[tuple[str, str], list[tuple[tuple[frozenset[str], ...], str, bool]]] = {}
        for entries in lexicon.phrases.values():
            for words, concept, exact in entries:
                forms = tuple(frozenset({w} if exact else self._token(w).keys) for w in words)
                for pair in product(forms[0], forms[1]):
                    self._phrases.setdefault(pair, []).append((forms, concept, exact))

    def token(self, norm: str) -> SafeTok:
        return self._token(norm)

    @lru_cache(maxsize=100_000)  # noqa: B019 - one matcher per analyzer, kept for its lifetime
    def _token(self, norm: str) -> SafeTok:
        lemma = self._lemma(norm).replace("_", "")
        keys = [norm]
        if lemma != norm:
            keys.append(lemma)
        if "-" in norm:  # "hypo-snoepjes": the whole, and its head (Dutch compounds end in the head)
            head = norm.rsplit("-", 1)[1]
            keys += [norm.replace("-", ""), head, self._lemma(head)]
        fixed = self.lexicon.repair(norm)
        if fixed is not None and not any(self.lexicon.concepts_of(k) for k in keys):
            keys.append(fixed)
        if _ORDINAL.match(norm):
            keys.append(ORDINAL_KEY)
        number = None
        m = _NUMBER.match(norm)
        if m:
            number = float(m.group(1).replace(",", "."))
        return SafeTok(norm, tuple(dict.fromkeys(keys)), number)

    def assess(self, sentences: Sequence[Sequence[SafeTok]]) -> SafetyResult:
        """Per kind the highest tier found. Two check signals for one kind that share no concept
        ("geen toekomst" and "spullen weggegeven") add up to a route; a hit lowered by a modifier
        (the past, a film) never does."""
        found: dict[str, list[tuple[str, Rule, str]]] = {}
        concepts = [self._positions(self._unmask(sentence)) for sentence in sentences]
        own = [self._hits(positions) for positions in concepts]
        anchors = self._anchors(concepts, own)
        for covered, unit in _with_short_neighbours(sentences):
            hits = own[covered[0]] if len(covered) == 1 else self._sentence(unit)
            for kind, tier, rule, source in hits:
                for modifier, anchor in anchors:
                    if self._anchored(modifier, anchor, covered, kind, concepts):
                        tier = _apply(tier, modifier.then)
                        source = f"{source} [{modifier.name}]"
                if tier != NONE:
                    found.setdefault(kind, []).append((tier, rule, source))
        result = SafetyResult()
        for kind, kind_hits in found.items():
            routes = [source for tier, _, source in kind_hits if tier == ROUTE]
            plain = [rule for tier, rule, source in kind_hits if tier == CHECK and source == rule.source]
            if not routes and _independent(plain) >= CHECKS_MAKE_A_ROUTE:
                routes = [" & ".join(sorted({rule.source for rule in plain}))]
            if routes:
                result.route.append(kind)
                result.hits.append((kind, ROUTE, routes[0]))
            else:
                result.check.append(kind)
                result.hits.append((kind, CHECK, kind_hits[0][2]))
        return result

    def _anchors(
        self, concepts: list[dict[str, list[int]]], own: list[list[tuple[str, str, Rule, str]]]
    ) -> list[tuple[Modifier, int]]:
        """Sentences that only say when something was ("Dat was in 1996."): (modifier, index)."""
        found: list[tuple[Modifier, int]] = []
        later = [m for m in self.lexicon.modifiers if m.later]
        for index, positions in enumerate(concepts):
            if own[index] or not later:
                continue
            present = set(positions)
            for modifier in later:
                if present.issuperset(modifier.needs) and not present.intersection(modifier.unless):
                    found.append((modifier, index))
        return found

    def _anchored(
        self,
        modifier: Modifier,
        anchor: int,
        covered: tuple[int, ...],
        kind: str,
        concepts: list[dict[str, list[int]]],
    ) -> bool:
        targets = [i for i in covered if i != anchor]
        if kind not in modifier.kinds or not targets or not 0 < anchor - max(targets) <= modifier.later:
            return False
        if not all(concepts[i].keys() >= set(modifier.needs_here) for i in targets):
            return False
        if any(concepts[i].keys() & set(modifier.unless_here) for i in targets):
            return False
        later_sentences = concepts[anchor + 1 :]
        return not any(positions.keys() & set(modifier.unless_after) for positions in later_sentences)

    def _sentence(self, toks: Sequence[SafeTok]) -> list[tuple[str, str, Rule, str]]:
        """Every rule that fires in the sentence, with its tier after the modifiers."""
        return self._hits(self._positions(self._unmask(toks)))

    def _hits(self, positions: dict[str, list[int]]) -> list[tuple[str, str, Rule, str]]:
        if not positions:
            return []
        present = set(positions)
        hits: list[tuple[str, str, Rule, str]] = []
        for concept in sorted(present):  # sorted: the same report every run
            for rule in self.lexicon.rules_by_first.get(concept, ()):
                if present.issuperset(rule.needs) and not present.intersection(rule.unless):
                    hits += self._fire(rule, positions, present)
        return hits

    def _fire(
        self, rule: Rule, positions: dict[str, list[int]], present: set[str]
    ) -> list[tuple[str, str, Rule, str]]:
        """The rule's hit with its tier after the modifiers, or nothing. Every place the rule fires
        counts: a modifier (the past, a film) must hold near each of them."""
        spans = _spans(positions, rule.needs, rule.window)
        if not spans:
            return []
        tier, source = rule.tier, rule.source
        for modifier in self.lexicon.modifiers:
            if modifier.later or rule.kind not in modifier.kinds or not present.issuperset(modifier.needs):
                continue
            if all(modifier.holds(positions, sp) for sp in spans):
                tier = _apply(tier, modifier.then)
                source = f"{source} [{modifier.name}]"
        return [(rule.kind, tier, rule, source)] if tier != NONE else []

    def _unmask(self, toks: Sequence[SafeTok]) -> list[SafeTok]:
        """Take out the words of reviewed benign idioms ("doodmoe", "ik lach me dood")."""
        if not self.lexicon.benign:
            return list(toks)
        text = " ".join(t.norm for t in toks)
        starts, pos = [], 0
        for tok in toks:
            starts.append(pos)
            pos += len(tok.norm) + 1
        spans = [(m.start(), m.end()) for pattern in self.lexicon.benign for m in pattern.finditer(text)]
        if not spans:
            return list(toks)
        return [
            tok
            for tok, start in zip(toks, starts, strict=True)
            if not any(start < end and start + len(tok.norm) > begin for begin, end in spans)
        ]

    def _positions(self, toks: Sequence[SafeTok]) -> dict[str, list[int]]:
        lex = self.lexicon
        positions: dict[str, list[int]] = {}

        def add(concept: str, i: int) -> None:
            positions.setdefault(concept, []).append(i)

        for i, tok in enumerate(toks):
            for key in tok.keys:
                for concept in lex.concepts_of(key):
                    add(concept, i)
                for concept in lex.surface.get(tok.norm, ()):
                    add(concept, i)
            if i + 1 < len(toks):
                for pair in product(tok.keys, toks[i + 1].keys):
                    for forms, concept, exact in self._phrases.get(pair, ()):
                        if _phrase_at(toks, i, forms, exact):
                            add(concept, i)
            unit = toks[i + 1].norm if i + 1 < len(toks) else ""
            if tok.number is not None and unit not in lex.not_a_reading:
                for concept, (lo, hi) in lex.numbers.items():
                    if lo <= tok.number <= hi:
                        add(concept, i)
            if tok.norm in self.particles:
                # A separable verb split in the sentence: "neem ... in" -> "innemen".
                for j in range(max(0, i - 10), i):
                    for key in toks[j].keys:
                        for concept in lex.concepts_of(tok.norm + key):
                            add(concept, i)
        if positions:
            # The end of the sentence is a concept too: "ik wil niet meer" + END, not "... meer roken".
            add(END, len(toks))
        return positions


def _independent(rules: list[Rule]) -> int:
    """How many of these rules fire on concepts of their own (no concept shared with one counted)."""
    counted: list[set[str]] = []
    for rule in rules:
        needs = set(rule.needs)
        if all(not needs & other for other in counted):
            counted.append(needs)
    return len(counted)


def _apply(tier: str, then: str) -> str:
    """A modifier's effect: ``none`` drops the hit, ``check`` lowers a route to a check, ``route``
    raises a check to a route (a plan and a time: "vanavond", "ik weet waar")."""
    if tier == NONE or then == NONE:
        return NONE
    if then == ROUTE:
        return ROUTE
    return CHECK


SHORT_SENTENCE = 8  # "Benauwd!! Help": a sentence this short is also read together with its neighbour


def _with_short_neighbours(
    sentences: Sequence[Sequence[SafeTok]],
) -> list[tuple[tuple[int, ...], Sequence[SafeTok]]]:
    """Each sentence on its own, and each pair with a short one: (sentence indexes, tokens)."""
    units: list[tuple[tuple[int, ...], Sequence[SafeTok]]] = [((i,), s) for i, s in enumerate(sentences)]
    for i, (first, second) in enumerate(pairwise(sentences)):
        if min(len(first), len(second)) <= SHORT_SENTENCE:
            units.append(((i, i + 1), [*first, *second]))
    return units


def _phrase_at(toks: Sequence[SafeTok], i: int, forms: tuple[frozenset[str], ...], exact: bool) -> bool:
    """The phrase starts at token ``i``: each word in one of its forms ("=...": as written only)."""
    if i + len(forms) > len(toks):
        return False
    if exact:
        return all(toks[i + k].norm in forms[k] for k in range(len(forms)))
    return all(not forms[k].isdisjoint(toks[i + k].keys) for k in range(len(forms)))


def _spans(positions: dict[str, list[int]], needs: tuple[str, ...], window: int) -> list[tuple[int, int]]:
    """Every stretch of at most ``window`` tokens holding each needed concept (shortest per end)."""
    wanted = set(needs)
    events = sorted((p, c) for c in wanted for p in positions[c])
    count: dict[str, int] = {}
    left, found = 0, []
    for pos, concept in events:
        count[concept] = count.get(concept, 0) + 1
        while events[left][0] < pos - window or (len(count) == len(wanted) and count[events[left][1]] > 1):
            old = events[left][1]
            count[old] -= 1
            if not count[old]:
                del count[old]
            left += 1
        if len(count) == len(wanted):
            found.append((events[left][0], pos))
    return found
