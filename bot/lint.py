"""``python -m bot lint-content``: B1 as a checked property of every patient-facing Dutch text.

Checked per string (messages, questions, buttons, dimension and theme texts, patient templates):
- sentence length: none above 15 words; the average over all sentences at most 10;
- rare words: outside the 5,000 most frequent Dutch words (wordfreq; a word counts as frequent
  when its form or its lemma is in the list), unless the reviewed allow-list gives a reason;
- long words: 4 syllables or more (pyphen), unless allow-listed;
- passive voice ("worden", "wordt", "werd", "werden" with a participle);
- abbreviations (``bijv.``, ``o.a.``, capitals like ``POH``), unless allow-listed;
- more than one question in one message.
Texts for the POH (agenda, alerts, commands for clinicians) are not checked: they are not B1 text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.content import Catalog

MAX_SENTENCE = 15
MAX_AVERAGE = 10.0
TOP_N = 5000
LONG_SYLLABLES = 4
ALLOWLIST = Path("lexicon") / "b1_allowlist.yaml"
PATIENT_TEMPLATES = ("plan.txt.j2",)
# Keys in messages.yaml that are not patient text: for the POH, date parts, the terminal demo.
NOT_PATIENT = (
    "clinician.",
    "weekdays",
    "months",
    "date_",
    "demo.",
    "agenda.",
    "safety.flags",
    "safety.check_answers",
    "safety.route_names",
    "web.",
    "poh_",  # a part file's POH-facing texts (content/nl/messages/<feature>.yaml: poh_<feature>)
)
# ... except what a patient reads on paper: the printed invite from the web app.
PATIENT_WEB = (
    "web.invite.print_title",
    "web.invite.print_when",
    "web.invite.print_help",
    "web.invite.expires",
)

_JINJA_EXPR = re.compile(r"\{\{.*?\}\}")
_JINJA_TAG = re.compile(r"\{[%#].*?[%#]\}", re.S)
_SENTENCE_END = re.compile(r"[.!?:]\s|\n|[.!?]$")
_WORD = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'’-]*")
# A form of "worden" with a participle: ge-...-d/t, a prefixed one (be-, ver-, ont-, her-, er-), or op-ge-...
_PASSIVE = re.compile(
    r"\b(worden|wordt|werd|werden)\b.*?\b((?:ge|be|ver|ont|her|er)\w+[dt]|\w+ge\w+[dt])\b", re.I
)
_ABBREVIATION = re.compile(r"\b(?:[a-zA-Z]{1,4}\.){2,}|\b(?:bijv|evt|ca|enz|mbt|mvg)\.|\b[A-Z]{2,6}\b")


@dataclass(frozen=True)
class Text:
    file: str
    key: str
    text: str


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    strings: int = 0
    sentences: list[int] = field(default_factory=list)
    words: int = 0
    rare: int = 0  # words outside the top list (before the allow-list)
    allowed: set[str] = field(default_factory=set)

    @property
    def average(self) -> float:
        return sum(self.sentences) / len(self.sentences) if self.sentences else 0.0

    def summary(self) -> str:
        share = self.rare / self.words if self.words else 0.0
        return (
            f"{self.strings} strings, {len(self.sentences)} sentences, {self.words} words; "
            f"average {self.average:.1f} words per sentence (max {MAX_AVERAGE:g}), longest "
            f"{max(self.sentences, default=0)} (max {MAX_SENTENCE}); "
            f"{share:.1%} of words outside the {TOP_N:,} most frequent "
            f"({len(self.allowed)} allow-listed words used); {len(self.problems)} problems"
        )


def patient_texts(catalog: Catalog) -> Iterator[Text]:
    def walk(node: Any, key: str) -> Iterator[Text]:
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, str) and (key in PATIENT_WEB or not key.startswith(NOT_PATIENT)):
            yield Text(catalog.message_files.get(key.split(".")[0], "messages.yaml"), key, node)

    yield from walk(catalog.messages, "")
    for flow in catalog.flow_names:
        definition = catalog.flow(flow)
        for step in definition["steps"]:
            for sub in step.get("steps", [step]):
                for field_name in ("prompt", "simple_prompt"):
                    if sub.get(field_name):
                        yield Text(f"{flow}.yaml", f"{sub['id']}.{field_name}", sub[field_name])
        for name, options in (definition.get("options") or {}).items():
            for option in options:
                yield Text(f"{flow}.yaml", f"options.{name}.{option['value']}", str(option["label"]))
        for face in definition.get("faces") or []:
            yield Text(f"{flow}.yaml", f"faces.{face['value']}", str(face["label"]))
    for dim in catalog.dimensions:
        yield Text("dimensions.yaml", f"{dim.id}.name", dim.name)
        yield Text("dimensions.yaml", f"{dim.id}.explanation", dim.explanation)
    for theme in catalog.themes:
        yield Text("themes.yaml", theme.id, theme.label)
    for name in PATIENT_TEMPLATES:
        source = (catalog.content_dir / "templates" / name).read_text(encoding="utf-8")
        yield Text(f"templates/{name}", "(template)", source)


def plain(text: str) -> str:
    """Jinja placeholders become a neutral word, tags and comments go, /commands become words."""
    text = _JINJA_TAG.sub("", text)
    text = _JINJA_EXPR.sub("iets", text)
    return re.sub(r"(?<!\w)/(\w+)", r"\1", text)


def sentences(text: str) -> list[list[str]]:
    parts = _SENTENCE_END.split(text)
    return [words for p in parts if (words := _WORD.findall(p))]


@cache
def _top_words() -> frozenset[str]:
    from wordfreq import top_n_list

    return frozenset(top_n_list("nl", TOP_N))


@cache
def _hyphenator() -> Any:
    import pyphen

    return pyphen.Pyphen(lang="nl_NL")


@cache
def _lemma(word: str) -> str:
    import simplemma

    return str(simplemma.lemmatize(word, lang="nl")).casefold()


def syllables(word: str) -> int:
    return _hyphenator().inserted(word).count("-") + 1


def frequent(word: str) -> bool:
    top = _top_words()
    lower = word.casefold().strip("'’-")
    return lower in top or _lemma(lower) in top or all(part in top for part in lower.split("-") if part)


def load_allowlist(content_dir: Path) -> dict[str, str]:
    data = yaml.safe_load((content_dir / ALLOWLIST).read_text(encoding="utf-8")) or {}
    words = data.get("words") or {}
    missing = [w for w, reason in words.items() if not str(reason or "").strip()]
    if missing:
        raise ValueError(f"allow-list words without a reason: {', '.join(missing)}")
    return {str(w).casefold(): str(r) for w, r in words.items()}


def lint(catalog: Catalog) -> Report:
    allow = load_allowlist(catalog.content_dir)
    report = Report()
    for item in patient_texts(catalog):
        report.strings += 1
        text = plain(item.text)
        where = f"{item.file}: {item.key}"
        for words in sentences(text):
            report.sentences.append(len(words))
            if len(words) > MAX_SENTENCE:
                report.problems.append(f"{where}: sentence of {len(words)} words: {' '.join(words)}")
        if text.count("?") > 1:
            report.problems.append(f"{where}: more than one question")
        if _PASSIVE.search(text):
            report.problems.append(f"{where}: passive voice: {_PASSIVE.search(text)[0]!r}")  # type: ignore[index]
        abbreviations = set()
        for match in _ABBREVIATION.finditer(text):
            abbreviations.update(_WORD.findall(match[0]))
            if match[0].casefold().strip(".") not in allow:
                report.problems.append(f"{where}: abbreviation {match[0]!r}")
        for word in _WORD.findall(text):
            if word in abbreviations:
                continue
            report.words += 1
            lower = word.casefold()
            rare = not frequent(word)
            long = syllables(lower) >= LONG_SYLLABLES
            report.rare += rare
            if not (rare or long):
                continue
            if lower in allow:
                report.allowed.add(lower)
                continue
            kind = "rare word" if rare else f"long word ({syllables(lower)} syllables)"
            report.problems.append(f"{where}: {kind}: {word}")
    if report.average > MAX_AVERAGE:
        report.problems.append(
            f"all texts: average sentence {report.average:.1f} words (max {MAX_AVERAGE:g})"
        )
    return report


def main(content_dir: Path) -> int:
    report = lint(Catalog(content_dir))
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return 1 if report.problems else 0
