"""Dutch text understanding: behaviour on the hard cases, and the evaluation targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.content import Catalog
from bot.nlp.analyzer import Analyzer, Topic, lemma, shared_analyzer
from bot.nlp.evaluate import evaluate, format_report, load
from tests.conftest import run_cli

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return shared_analyzer()


def topic(analyzer: Analyzer, text: str, key: str) -> Topic:
    hits = [t for t in analyzer.analyze(text).topics if t.theme == key or t.lemma == key]
    assert hits, f"no topic {key!r} in {text!r}"
    return hits[0]


@pytest.mark.parametrize(
    ("text", "key", "negated"),
    [
        ("Koorts heb ik niet gehad.", "koorts", True),  # verb-final negation
        ("geen pijn meer", "pijn", True),
        ("ik rook niet", "roken", True),
        ("Ik ben eenzaam sinds mijn vrouw er niet meer is.", "eenzaamheid", False),  # clause boundary
        ("eenzaam omdat mijn kinderen niet langskomen", "eenzaamheid", False),
        ("de trap lukt niet", "wonen", False),  # a problem, not an absence
        ("ik kan niet slapen", "slapen", False),
        ("Ik heb geen geld voor de tandarts.", "geld", False),
        ("Pijn heb ik eigenlijk niet.", "pijn", True),
    ],
)
def test_negation(analyzer: Analyzer, text: str, key: str, negated: bool) -> None:
    assert topic(analyzer, text, key).negated is negated


def test_other_context_kinds(analyzer: Analyzer) -> None:
    assert topic(analyzer, "Vroeger rookte ik veel.", "roken").historical
    assert topic(analyzer, "Misschien ga ik weer sporten.", "bewegen").hypothetical
    assert topic(analyzer, "Mijn vader heeft veel pijn.", "pijn").other_person
    mine = topic(analyzer, "Ik maak me zorgen om mijn vader.", "stress")
    assert mine.present


def test_informal_writing(analyzer: Analyzer) -> None:
    result = analyzer.analyze("mn rug doet zeer en k slaap nie goed")
    assert {"pijn", "slapen"} <= set(result.themes)
    assert all(not t.negated for t in result.topics)


def test_sentences_survive_abbreviations(analyzer: Analyzer) -> None:
    result = analyzer.analyze("Ik heb bijv. veel hoofdpijn. Dr. Jansen zei dat ik moet wandelen.")
    sentences = {t.sentence for t in result.topics}
    assert sentences == {"Ik heb bijv. veel hoofdpijn.", "Dr. Jansen zei dat ik moet wandelen."}


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("ik denk er niet aan om zelfmoord te plegen", "suicide"),  # negation never switches it off
        ("Ik wil niet dood, maar ik wil ook niet zo verder.", "suicide"),
        ("dat ik het niet meer zie zitten", "suicide"),
        ("ik denk aan zelfmoort", "suicide"),  # a typo
        ("ik ben gistere bewustloos geraakt", "unconscious"),
        ("Mijn man slaat me.", "violence"),
        ("Ik heb pijn op de borst en ik zweet.", "chest_pain"),
    ],
)
def test_red_flags_found(analyzer: Analyzer, text: str, flag: str) -> None:
    assert flag in analyzer.analyze(text).red_flags


@pytest.mark.parametrize(
    "text",
    [
        "ik ben dood moe",
        "Het was om dood te gaan zo lekker.",
        "Geen pijn op de borst meer sinds de stent.",
        "Ik lach me dood.",
        "Er is veel geweld op tv.",
    ],
)
def test_benign_idioms_are_not_flags(analyzer: Analyzer, text: str) -> None:
    assert analyzer.analyze(text).red_flags == []


def test_exclusion_blanks_only_its_own_words(analyzer: Analyzer) -> None:
    text = "Geen pijn op de borst meer sinds de stent. Maar vandaag weer pijn op de borst."
    assert analyzer.analyze(text).red_flags == ["chest_pain"]


def test_lemmas_cover_dutch_inflection() -> None:
    pairs = yaml.safe_load((DATA / "lemma_gold.yaml").read_text(encoding="utf-8"))["pairs"]
    hits = sum(lemma(word) == gold for word, gold in pairs.items())
    assert hits / len(pairs) >= 0.9


def test_evaluation_meets_targets(analyzer: Analyzer) -> None:
    items = load(DATA / "nlp_eval.yaml")
    report = evaluate(analyzer, items, [d.id for d in Catalog().dimensions])
    assert report.items >= 250 and report.crisis >= 60 and report.tricky >= 60
    assert report.passed(), format_report(report)


async def test_cli_analyze_writes_json_lines(tmp_path: Path) -> None:
    code, out, err = await run_cli(
        "nlp", "analyze", cwd=tmp_path, stdin="Koorts heb ik niet gehad.\n\nik wil dood\n"
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 2
    assert set(rows[0]) == {"text", "domains", "themes", "topics", "red_flags", "checks", "safety"}
    assert rows[0]["topics"][0] == {
        "text": "Koorts",
        "lemma": "koorts",
        "negated": True,
        "historical": False,
        "hypothetical": False,
        "other_person": False,
    }
    assert rows[1]["red_flags"] == ["suicide"]
