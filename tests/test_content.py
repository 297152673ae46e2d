"""Content guards: the intake definition loads, every key the code uses exists, and patient
texts keep the basic B1 rules (short sentences, one question per message, no passive)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.content import Catalog, ContentError
from bot.flows.engine import expand_steps
from bot.lint import lint
from tests.conftest import run_cli

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


@pytest.mark.parametrize(
    ("step", "named"),
    [
        ({"id": "a", "type": "scale", "mni": 3}, "step 'a', field 'mni': Extra inputs"),
        ({"id": "a", "type": "text", "optional": "misschien"}, "step 'a', field 'optional'"),
        ({"id": "a", "type": "pick"}, "step 'a', field 'options': Field required"),
        ({"id": "a", "type": "schaal"}, "step 'a', Input tag 'schaal'"),
        ({"id": "a", "type": "priorities", "max": 0}, "step 'a', field 'max'"),
        ({"id": "a", "type": "text", "when": "unset"}, "step 'a': 'when: unset' is for setting steps"),
        (
            {"for_each": "dimension", "steps": [{"id": "b", "type": "yesno", "prompt": 3}]},
            "step 'b', field 'prompt'",
        ),
    ],
)
def test_a_bad_flow_file_names_the_file_the_step_and_the_field(
    catalog: Catalog, step: dict[str, object], named: str
) -> None:
    flow = {"id": "x", "steps": [step, {"id": "e", "type": "end"}]}
    with pytest.raises(ContentError) as caught:
        expand_steps(catalog, flow, "content/nl/x.yaml")
    assert str(caught.value).startswith("content/nl/x.yaml: ") and named in str(caught.value)


def test_every_step_type_in_the_flows_is_registered_once(catalog: Catalog) -> None:
    from bot.flows.steps import STEP_CLASSES, STEP_TYPES

    assert len(STEP_TYPES) == len(STEP_CLASSES) == 11
    used = {s.type for flow in ("intake", "plan") for s in expand_steps(catalog, catalog.flow(flow))}
    assert used == STEP_TYPES


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


def test_all_content_passes_the_b1_lint(catalog: Catalog) -> None:
    report = lint(catalog)
    assert not report.problems, "\n".join(report.problems)
    assert report.strings > 200 and report.average <= 10


def test_the_lint_reports_each_problem_with_file_and_key(catalog: Catalog, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "nl"
    shutil.copytree(catalog.content_dir, copy)
    messages = copy / "messages.yaml"
    text = messages.read_text(encoding="utf-8")
    text = text.replace(
        "pause: |-",
        'lint_long: "Dit is een hele lange zin met heel veel woorden die niemand in een keer '
        'goed kan lezen of onthouden."\n'
        'lint_passive: "Uw antwoord wordt bewaard."\n'
        'lint_abbreviation: "Neem bijv. uw medicijnen mee."\n'
        'lint_rare: "Uw anamnese is compleet."\n'
        'lint_questions: "Gaat het? Lukt het?"\n'
        "pause: |-",
    )
    messages.write_text(text, encoding="utf-8")
    problems = lint(Catalog(copy)).problems
    for key, kind in (
        ("lint_long", "sentence of 20 words"),
        ("lint_passive", "passive voice"),
        ("lint_abbreviation", "abbreviation"),
        ("lint_rare", "rare word: anamnese"),
        ("lint_questions", "more than one question"),
    ):
        assert any(p.startswith(f"messages.yaml: {key}: {kind}") for p in problems), (key, problems)
    assert len(problems) == 5
    allow = copy / "lexicon" / "b1_allowlist.yaml"
    allow.write_text(allow.read_text(encoding="utf-8") + '  anamnese: ""\n', encoding="utf-8")
    with pytest.raises(ValueError, match="without a reason"):
        lint(Catalog(copy))


async def test_lint_content_command(tmp_path: Path) -> None:
    code, out, _ = await run_cli("lint-content", cwd=tmp_path)
    assert code == 0 and "0 problems" in out and "allow-listed" in out


def test_consent_version_changes_with_the_text(catalog: Catalog, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "nl"
    shutil.copytree(catalog.content_dir, copy)
    messages = copy / "messages.yaml"
    last_line = str(catalog.raw("consent")).splitlines()[-1]  # whatever the consent says now
    text = messages.read_text(encoding="utf-8")
    assert text.count(last_line) == 1
    messages.write_text(text.replace(last_line, last_line + " Graag."), encoding="utf-8")
    assert Catalog(copy).consent_version() != catalog.consent_version()


def test_dutch_dates(catalog: Catalog) -> None:
    from datetime import datetime

    assert catalog.format_when(datetime(2026, 12, 1, 14, 30)) == "dinsdag 1 december om 14:30"
    assert catalog.format_when(datetime(2027, 3, 7, 9, 5), "short") == "7 maart, 09:05"


def test_env_example_and_readme_name_every_setting() -> None:
    from bot.config import Settings

    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    loaded = Settings(_env_file=str(ROOT / ".env.example"))  # every line parses
    assert loaded.piper_model is None and loaded.stt_model_dir is None and loaded.signal_rules_file is None
    for name in Settings.model_fields:
        variable = name.upper()
        assert variable in example, f"{variable} missing from .env.example"
        assert variable in readme or variable.replace("SIMULATED_CLOCK", "") in readme, (
            f"{variable} not in README"
        )


def test_message_parts_are_merged_linted_and_never_overlap(catalog: Catalog, tmp_path: Path) -> None:
    """``messages/*.yaml`` adds keys next to ``messages.yaml``; the lint names the part's file and
    a key in two files is refused at load."""
    import shutil

    copy = tmp_path / "nl"
    shutil.copytree(catalog.content_dir, copy)
    (copy / "messages").mkdir(exist_ok=True)
    part = copy / "messages" / "zz_lint_part.yaml"
    part.write_text('zz_part:\n  hello: "Uw anamnese is compleet."\n', encoding="utf-8")
    merged = Catalog(copy)
    assert merged.t("zz_part.hello") == "Uw anamnese is compleet."
    assert merged.message_files["zz_part"] == "messages/zz_lint_part.yaml"
    problems = lint(merged).problems
    assert any(p.startswith("messages/zz_lint_part.yaml: zz_part.hello: rare word") for p in problems)
    part.write_text('pause: "Nog een keer."\n', encoding="utf-8")
    with pytest.raises(ContentError, match=r"also in messages\.yaml"):
        Catalog(copy)


def test_every_flow_file_is_found_and_linted(catalog: Catalog, tmp_path: Path) -> None:
    import shutil

    assert {"intake", "plan"} <= set(catalog.flow_names)
    copy = tmp_path / "nl"
    shutil.copytree(catalog.content_dir, copy)
    (copy / "zz_flow.yaml").write_text(
        'steps:\n  - id: hi\n    type: text\n    prompt: "Uw anamnese is compleet."\n', encoding="utf-8"
    )
    other = Catalog(copy)
    assert "zz_flow" in other.flow_names and "sociale_kaart" not in other.flow_names
    assert any(p.startswith("zz_flow.yaml: hi.prompt: rare word") for p in lint(other).problems)
