"""Content guards: the intake definition loads, every key the code uses exists, and patient
texts keep the basic B1 rules (short sentences, one question per message, no passive)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.content import Catalog, ContentError
from bot.flows.engine import expand_steps

ROOT = Path(__file__).resolve().parent.parent
PATIENT_FREE = (
    "clinician.",
    "weekdays",
    "months",
    "date_",
    "demo.",
    "commands.",
    "agenda.",
    "safety.flags",
    "safety.route_names",
)


def patient_texts(catalog: Catalog) -> Iterator[tuple[str, str]]:
    def walk(node: object, key: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, str) and not key.startswith(PATIENT_FREE):
            yield key, node

    yield from walk(catalog.messages, "")
    for flow in ("intake", "plan"):
        definition = catalog.flow(flow)
        for step in definition["steps"]:
            for sub in step.get("steps", [step]):
                if "prompt" in sub:
                    yield f"{flow}.{sub['id']}", sub["prompt"]
        for name, options in (definition.get("options") or {}).items():
            for option in options:
                yield f"{flow}.options.{name}.{option['value']}", option["label"]
    for dim in catalog.dimensions:
        yield f"dimensions.{dim.id}", dim.explanation


def sentences(text: str) -> list[list[str]]:
    text = re.sub(r"\{\{.*?\}\}", "X", text)
    text = re.sub(r"/\w+", "opdracht", text)
    parts = re.split(r"[.!?:]\s|\n|[.!?]$", text)
    return [words for p in parts if (words := re.findall(r"[\w'’-]+", p))]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


def test_definition_expands(catalog: Catalog) -> None:
    steps = expand_steps(catalog, catalog.flow("intake"))
    types = [s.type for s in steps]
    assert types[:3] == ["setting", "setting", "consent"] and types[-1] == "end"
    assert sum(s.type == "scale" for s in steps) == 6
    plan = expand_steps(catalog, catalog.flow("plan"))
    assert [s.type for s in plan][-2:] == ["confirm", "end"]


def test_broken_flow_definitions_are_refused(catalog: Catalog) -> None:
    plan = catalog.flow("plan")
    with pytest.raises(ContentError, match="again"):
        expand_steps(
            catalog, {**plan, "steps": [{"id": "c", "type": "confirm", "again": "nope"}, *plan["steps"]]}
        )
    with pytest.raises(ContentError, match="options"):
        expand_steps(catalog, {**plan, "options": {}})
    with pytest.raises(ContentError, match="condition"):
        expand_steps(catalog, {"id": "x", "steps": [{"id": "a", "type": "text", "when": "a ~ b"}]})


def test_keys_used_in_code_exist(catalog: Catalog) -> None:
    used: set[str] = set()
    for path in [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("scheduler").rglob("*.py")]:
        source = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"""(?:\.t|\bb)\(\s*f?["']([a-z_.]+)["']""", source))
        used |= set(re.findall(r"""\._(?:note|reask)\([^()]*?["']([a-z_.]+)["']""", source))
        used |= set(re.findall(r"""["']((?:bad|toast|buttons)\.[a-z_]+)["']""", source))
    used.discard("clinician.status.")
    assert len(used) > 40
    for key in sorted(used):
        catalog.raw(key)  # raises ContentError when missing


def test_missing_key_is_an_error(catalog: Catalog) -> None:
    with pytest.raises(ContentError):
        catalog.t("does.not.exist")


def test_patient_texts_follow_basic_b1_rules(catalog: Catalog) -> None:
    problems = []
    lengths = []
    for key, text in patient_texts(catalog):
        for words in sentences(text):
            lengths.append(len(words))
            if len(words) > 15:
                problems.append(f"{key}: sentence of {len(words)} words: {' '.join(words)}")
        if text.count("?") > 1:
            problems.append(f"{key}: more than one question")
        if re.search(r"\b(worden|wordt|werd|werden)\b", text, re.IGNORECASE):
            problems.append(f"{key}: passive voice")
    assert not problems, "\n".join(problems)
    assert sum(lengths) / len(lengths) <= 10


def test_consent_version_changes_with_the_text(catalog: Catalog, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "nl"
    shutil.copytree(catalog.content_dir, copy)
    messages = copy / "messages.yaml"
    messages.write_text(
        messages.read_text(encoding="utf-8").replace("Doet u mee?", "Wilt u meedoen?"), encoding="utf-8"
    )
    assert Catalog(copy).consent_version() != catalog.consent_version()


def test_dutch_dates(catalog: Catalog) -> None:
    from datetime import datetime

    assert catalog.format_when(datetime(2026, 12, 1, 14, 30)) == "dinsdag 1 december om 14:30"
    assert catalog.format_when(datetime(2027, 3, 7, 9, 5), "short") == "7 maart, 09:05"
