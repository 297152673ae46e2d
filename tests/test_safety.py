"""The crisis safety net: the matcher (unit), its evaluation sets, and the two tiers in the bot.

Dispatcher tests feed real Telegram updates through a real aiogram Dispatcher; storage is SQLite.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from bot.clock import FrozenClock
from bot.nlp.analyzer import Analyzer
from bot.nlp.evaluate import (
    PH_TARGET,
    SAFETY_TARGETS,
    evaluate_ph,
    evaluate_safety,
    expected_kinds,
    format_ph,
    format_safety,
    load,
)
from bot.nlp.safety import Rule, SafetyLexicon
from bot.nlp.suspicion import fingerprint, ordinary, train
from bot.testing.fake_telegram import FakeTelegram
from tests.catalog import asks, label, says, shows
from tests.conftest import DIMS, Harness, run_cli
from tests.test_dispatcher import PATIENT, POH, STRANGER, conversation, setup_people

DATA = Path(__file__).parent / "data"
LEXICON = Path(__file__).parent.parent / "content" / "nl" / "lexicon" / "safety.yaml"


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


def level(analyzer: Analyzer, text: str) -> tuple[str, list[str]]:
    result = analyzer.assess(text)
    return result.level, result.kinds


# -- the matcher ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("ik wil niet meer leven", "suicide"),  # negation never switches a flag off
        ("Ik denk er niet aan om er een eind aan te maken hoor", "suicide"),
        ("Vannacht heb ik al mijn slaappillen ingenomen", "overdose"),  # inverted, separable, compound
        ("omdat ik een hele strip oxazepam heb geslikt", "overdose"),  # verb last
        ("ik neem ze straks allemaal in, alle pillen", "overdose"),  # "neem ... in" re-joined
        ("mn man reageert nergens meer op", "unconscious"),  # someone else, chat spelling
        ("ze reageerde niet meer toen ik haar riep", "unconscious"),  # past tense
        ("mijn dochter krast in haar armen", "self_harm"),  # another verb, another person
        ("suiker 2,1 en ik tril helemaal", "glucose"),  # a number with its concept
        ("onze baby van 5 weken heeft 38,4", "ill_child"),
        ("Sinds vanochtend zit er een band om mijn borst", "chest_pain"),
        ("ik krijg bijna geen lucht", "breathless"),
        ("Mijn moeder praat ineens heel raar", "stroke"),
        ("hij hoest bloed op", "bleeding"),
        ("na de wespensteek is zijn tong dik", "anaphylaxis"),
        ("hoge koorts en ze is heel erg in de war", "fever_sepsis"),
        ("mijn zoon pakt steeds geld van mijn rekening af", "violence"),
        ("ik heb zelfmoortgedachten", "suicide"),  # a typo in a compound
        ("ik word thuis geslgen", "violence"),  # a letter left out, though "gelegen" is one change away
        ("ik voel me thuis niet veiig", "violence"),  # a typo in a word that only occurs in a phrase
        ("heb te veel insuleine gespoten en voel me heel zweterig", "overdose"),
    ],
)
def test_caught_whatever_the_form(analyzer: Analyzer, text: str, kind: str) -> None:
    tier, kinds = level(analyzer, text)
    assert tier != "none" and kind in kinds, (text, tier, kinds)


@pytest.mark.parametrize(
    ("text", "tier"),
    [
        ("ik heb pillen gespaard", "check"),  # a preparation, not a statement
        ("ik ben het leven zat", "check"),
        ("ik heb een afscheidsbrief geschreven", "check"),
        ("mijn suiker is 3,6", "check"),  # low, no symptoms named
        ("Ik wil dood.", "route"),
        ("Vroeger heb ik mezelf gesneden", "check"),  # own past crisis: asked directly, not dropped
        ("k heb een afscheidsbrief voor mn kinderen, ligt op de keukentafel", "route"),  # ready to be found
        # A later sentence that only says when: the past, for the sentences before it.
        ("Ik had een hartinfarct. Dat is nu twintig jaar geleden.", "none"),
        ("Ik had pijn op de borst. Dat is jaren geleden. Nu heb ik het weer.", "route"),
        ("Ik heb pijn op de borst. Dat had ik in 1996 ook.", "route"),  # a comparison, not the past
        ("Ik heb mezelf toen gesneden. Dat is jaren geleden.", "check"),  # own past crisis: asked
        # Denied by the writer: never switched off, at most asked; over when a cause ended it.
        ("Nee, ik ben niet flauwgevallen, ik ging alleen even zitten", "check"),
        ("geen pijn op de borst meer gehad sinds ze die stent hebben geplaatst", "none"),
        ("ik krijg geen lucht meer sinds vanochtend", "route"),
        ("Als dat muziekje nog één keer speelt spring ik uit het raam. Grapje hoor.", "check"),
        ("Mag ik paracetamol en ibuprofen tegelijk nemen?", "none"),  # a dose question, no signs
        ("Ik heb 20 paracetamollen op, mag ik nog iets drinken?", "route"),
    ],
)
def test_tiers(analyzer: Analyzer, text: str, tier: str) -> None:
    assert level(analyzer, text)[0] == tier


@pytest.mark.parametrize(
    "text",
    [
        "ik ben doodmoe na het werk",
        "Ik lach me dood om die serie",
        "Mijn vader is vorig jaar overleden aan een hartaanval",  # someone else's past
        "Tien jaar geleden had ik een hartinfarct, sindsdien geen klachten",  # own past, treated
        "We keken gisteren een film over een moord en zelfmoord",  # a film
        "Mijn suiker was vanochtend 6,4",  # a healthy measurement
        "Temperatuur 37,4",
        "Ik ben gestopt met roken",  # a real word is never "repaired" into a danger word
        "Ik snij de uien fijn voor de soep",
        "bloed laten prikken bij de huisarts",
    ],
)
def test_benign(analyzer: Analyzer, text: str) -> None:
    assert level(analyzer, text) == ("none", [])


def test_history_is_only_suppressed_in_its_own_sentence(analyzer: Analyzer) -> None:
    text = "Vorig jaar had ik een hartaanval. Nu weer pijn op de borst."
    assert level(analyzer, text) == ("route", ["chest_pain"])


@pytest.mark.parametrize(
    ("text", "level"),
    [
        # Recently, and it came right: no alarm (a body complaint only).
        ("Vorige week had ik pijn op de borst. De test was goed en de cardioloog is tevreden.", "none"),
        ("Zondag ben ik flauwgevallen in de kerk, na een glaasje water ging het weer.", "none"),
        # Recently, but it is back, worse, or help is needed: it stays.
        ("Vorige week had ik pijn op de borst, het ging weer over maar nu komt het terug.", "route"),
        ("Gisteren ben ik flauwgevallen, alles was goed, maar ik ben nu alleen thuis en help.", "route"),
        # Thoughts of death or self-harm, even recent and "over": never switched off.
        ("Vorige week wilde ik dood, nu gaat het weer goed.", "route"),
        # New this round (dev batch four): an earlier attempt and now "doing it right"; a train and a jump.
        ("Vorige week heb ik het al een keer geprobeerd met pillen, nu wil ik het goed doen", "route"),
        ("als de intercity komt spring ik", "route"),
        ("Alles voorbereid, vanavond om 11 uur is het zover", "route"),  # a moment: plan_and_time
        ("ik hoop dat jullie me vergeven, ik ga nu", "check"),
    ],
)
def test_recent_and_recovered_and_this_rounds_rules(analyzer: Analyzer, text: str, level: str) -> None:
    assert analyzer.assess(text).level == level, analyzer.assess(text).hits


def test_rule_syntax_is_strict() -> None:
    rule = Rule.parse("k", "route", "A + B - C - D | window 4")
    assert (rule.needs, rule.unless, rule.window) == (("A", "B"), ("C", "D"), 4)
    with pytest.raises(ValueError):
        Rule.parse("k", "route", "A - B + C")  # ambiguous: refused
    with pytest.raises(ValueError):
        Rule.parse("k", "route", "A + B | span 3")


def test_unknown_concept_refuses_to_load(tmp_path: Path) -> None:
    data = yaml.safe_load(LEXICON.read_text(encoding="utf-8"))
    data["kinds"]["suicide"]["route"].append("WANT + DAED")  # a typo would silently disable a rule
    broken = tmp_path / "safety.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="DAED"):
        SafetyLexicon(broken)


def test_every_kind_has_a_route_text_a_question_and_a_label(analyzer: Analyzer) -> None:
    from bot.content import Catalog

    catalog = Catalog()
    for kind, route in analyzer.lexicon.safety.routes.items():
        assert catalog.t(f"safety.routes.{route}")
        assert "?" in catalog.t(f"safety.checks.{kind}")
        assert catalog.t(f"safety.flags.{kind}")


# -- evaluation sets ----------------------------------------------------------------------------------
FROZEN = ("safety_heldout.yaml", "ph_heldout.yaml")


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_held_out_sets_are_frozen(name: str) -> None:
    """Held-out data is never edited while rules are tuned: a change here must be deliberate (move
    items to dev and write new held-out ones, then record the new digest in ``FROZEN.sha256``)."""
    recorded = dict(
        line.split()[::-1]
        for line in (DATA / "FROZEN.sha256").read_text(encoding="utf-8").splitlines()
        if line
    )
    assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == recorded[name]


def test_sets_are_big_enough_and_apart() -> None:
    heldout, dev = load(DATA / "safety_heldout.yaml"), load(DATA / "safety_dev.yaml")
    crisis = [i for i in heldout if expected_kinds(i)]
    assert len(crisis) >= 300 and len(heldout) - len(crisis) >= 300
    kinds = {expected_kinds(i)[0] for i in crisis}
    assert kinds >= set(Analyzer().lexicon.safety.routes)  # every kind is measured
    assert not {i["t"] for i in heldout} & {i["t"] for i in dev}  # no statement in both
    ph_dev, ph_heldout = load(DATA / "ph_dev.yaml"), load(DATA / "ph_heldout.yaml")
    assert not {i["t"] for i in ph_dev} & {i["t"] for i in ph_heldout}


# Regression floors for the suite, per set: the targets where they are met, else the figure
# measured at the last tuning round (the closing note of issue 10 gives them; `python -m bot nlp
# evaluate` prints them). Raise a floor when a round improves it; never lower one to make a change pass.
TARGETS = {"caught": SAFETY_TARGETS["caught"], "routed": SAFETY_TARGETS["routed"]}
# The held-out sets are the third safety edition and the second PH edition (written 2026-12-03; the
# earlier ones moved to dev, tags moved and moved2). The figures below were measured on them before any
# rule was tuned (the second layer retrained on the grown dev set), so they are the starting point of the
# next rounds (see the closing note of issue 10).
# 2026-12-03 (stop 20): dev grew by a fourth batch (400 crisis, 420 benign, 300 PH statements by
# helpers that never saw the rules, tag fresh4), harder than the old dev set, so the dev floors are the
# figures on the grown set; the held-out floors rose with the round that followed.
SAFETY_FLOOR = {
    "dev": {"caught": 0.98, "routed": 0.84, "benign_flagged": 0.127, "benign_routed": 0.064},
    "held-out": {"caught": 0.98, "routed": 0.80, "benign_flagged": 0.298, "benign_routed": 0.139},
}
EVERYDAY_FLOOR = {"dev": {"flagged": 0.084, "routed": 0.038}, "held-out": {"flagged": 0.11, "routed": 0.033}}
PH_FLOOR = {"dev": 0.76, "held-out": 0.79}
SETS = {"dev": "dev", "held-out": "heldout"}  # report name -> file suffix in tests/data


def test_floors_never_above_the_targets() -> None:
    """A floor is the target or the figure below it, never stricter: the suite holds what was reached."""
    for floor in SAFETY_FLOOR.values():
        assert floor["caught"] <= TARGETS["caught"] and floor["routed"] <= TARGETS["routed"]
        assert floor["benign_flagged"] >= SAFETY_TARGETS["benign_flagged"]
        assert floor["benign_routed"] >= SAFETY_TARGETS["benign_routed"]
    assert all(value <= PH_TARGET for value in PH_FLOOR.values())


def test_safety_figures_on_dev_and_held_out(analyzer: Analyzer) -> None:
    reports = {name: evaluate_safety(analyzer, load(DATA / f"safety_{SETS[name]}.yaml")) for name in SETS}
    print(format_safety(reports, show_misses=False))
    for name, report in reports.items():
        m, floor = report.metrics(), SAFETY_FLOOR[name]
        assert m["caught"] >= floor["caught"] and m["routed"] >= floor["routed"], format_safety(reports)
        assert m["benign_flagged"] <= floor["benign_flagged"], format_safety(reports)
        assert m["benign_routed"] <= floor["benign_routed"], format_safety(reports)


def test_positive_health_tagging_on_dev_and_held_out(analyzer: Analyzer) -> None:
    reports = {name: evaluate_ph(analyzer, load(DATA / f"ph_{SETS[name]}.yaml")) for name in SETS}
    print(format_ph(reports, show_misses=False))
    for name, report in reports.items():
        assert report.tagged.value >= PH_FLOOR[name], format_ph(reports)


async def test_cli_analyze_adds_the_safety_tier(tmp_path: Path) -> None:
    code, out, _ = await run_cli(
        "nlp", "analyze", cwd=tmp_path, stdin="ik heb pillen gespaard\nik wil dood\nik ben doodmoe\n"
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["safety"] for r in rows] == ["check", "route", "none"]
    assert rows[0]["checks"] == ["suicide"] and rows[1]["red_flags"] == ["suicide"]


async def test_cli_evaluate_prints_dev_and_held_out_per_kind(tmp_path: Path) -> None:
    code, out, err = await run_cli("nlp", "evaluate", "--quiet", cwd=tmp_path)  # any folder: data found
    assert code in (0, 1) and "Traceback" not in err
    assert "dev" in out and "held-out" in out
    for kind in ("suicide", "overdose", "glucose", "ill_child"):
        assert kind in out
    assert "benign statements" in out and "Positive Health" in out


# -- the second layer: learned from dev, only asks ----------------------------------------------------
def test_the_model_is_trained_on_the_current_dev_set_and_never_on_held_out(analyzer: Analyzer) -> None:
    model = analyzer.suspicion
    assert model is not None, "content/nl/lexicon/safety_model.json is missing: python -m bot nlp train"
    dev = [DATA / "safety_dev.yaml", DATA / "ph_dev.yaml", DATA / "nlp_eval.yaml"]  # nlp train's defaults
    assert model.trained_on == fingerprint(dev), "a dev set changed: run python -m bot nlp train"
    assert model.stats["items"] == len(load(dev[0])) + sum(len(ordinary(load(p))) for p in dev[1:])


def test_everyday_statements_are_left_alone(analyzer: Analyzer) -> None:
    """Ordinary answers ("ik slaap slecht", "ik kom de deur bijna niet uit") must not get a crisis
    question: measured on the Positive Health sets, which hold no crisis statement."""
    for name, floor in EVERYDAY_FLOOR.items():
        report = evaluate_safety(analyzer, ordinary(load(DATA / f"ph_{SETS[name]}.yaml")))
        print(name, report.benign_flagged, report.benign_routed)
        assert (
            report.benign_flagged.value <= floor["flagged"] and report.benign_routed.value <= floor["routed"]
        )


def test_the_second_layer_only_asks_where_the_rules_found_nothing(analyzer: Analyzer) -> None:
    text = "ik voel me zo leeg en moe van alles, ik kan niet meer verder zo"  # no rule fires on this
    assert not analyzer.safety_matcher.assess([analyzer._safe_tokens(s) for s in analyzer._sentences(text)])
    result = analyzer.assess(text)
    assert result.route == [] and result.check == ["suicide"] and result.hits[0][2].startswith("model")
    ruled = analyzer.assess("ik wil er gewoon niet meer zijn")  # the rules decide: a route, no model
    assert ruled.route == ["suicide"] and not any(h[2].startswith("model") for h in ruled.hits)
    for everyday in ("mijn knie doet pijn bij het fietsen", "ik ga morgen naar de markt"):
        assert not analyzer.assess(everyday)


def test_training_picks_its_threshold_on_the_items_it_gets() -> None:
    items = [{"t": f"ik wil echt niet meer verder {n}", "kind": "suicide"} for n in range(20)]
    items += [{"t": f"ik ga morgen weer lekker wandelen {n}", "kind": "none"} for n in range(20)]
    model = train(items, expected_kinds, "x")
    suspected = model.suspects("ik wil echt niet meer verder, nooit")
    assert suspected is not None and suspected[0] == "suicide" and suspected[1] > model.threshold
    assert model.suspects("ik ga morgen weer lekker fietsen") is None
    assert model.suspects("ik wil niet verder") is None  # too short to judge: the rules alone
    assert model.stats["items"] == 40 and model.trained_on == "x"


async def test_cli_train_refuses_the_held_out_set(tmp_path: Path) -> None:
    code, _, err = await run_cli(
        "nlp", "train", "--safety-dev", str(DATA / "safety_heldout.yaml"), cwd=tmp_path
    )
    assert code == 2 and "never used to train" in err
    code, _, err = await run_cli("nlp", "train", "--ordinary", str(DATA / "ph_heldout.yaml"), cwd=tmp_path)
    assert code == 2 and "never used to train" in err


# -- the two tiers in the bot ------------------------------------------------------------------------
async def test_check_question_then_no_goes_on_and_shows_in_the_agenda(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    poh_before = len(core.to_chat(POH))
    await harness.say(PATIENT, "ik ben het leven zat")
    question = core.last_to(PATIENT)
    yes_no = [label("buttons.check_yes"), label("buttons.check_no")]
    assert says("safety.checks.suicide") in question.text and [text for text, _ in question.buttons] == yes_no
    assert (await conversation(harness.app))["answers"]["what_matters"] == "ik ben het leven zat"  # kept
    assert len(core.to_chat(POH)) == poh_before  # no alarm for a check
    yes = dict(question.buttons)[label("buttons.check_yes")]
    await harness.tap(PATIENT, label("buttons.check_no"))
    texts = [m.text for m in core.to_chat(PATIENT)[-2:]]
    # thanks, then the next question
    assert says("safety.check_thanks") in texts[0] and asks(f"{DIMS[0]}.score") in texts[1]
    core.user_taps(PATIENT, question, data=yes)  # a late tap on the answered question changes nothing
    await harness.pump()
    assert asks(f"{DIMS[0]}.score") in core.last_to(PATIENT).text
    clock.advance(timedelta(minutes=10))
    await harness.app.tick()
    await harness.pump()
    assert len(core.to_chat(POH)) == poh_before  # answered: no notice later either
    agenda = await harness.app.agenda.text(1)
    asked, answer = says("safety.flags.suicide"), says("safety.check_answers.no")
    assert f"Direct gevraagd naar: {asked} · antwoord: {answer}" in agenda
    assert "leven zat" not in agenda.split("Direct gevraagd")[1].splitlines()[0]  # never the words there


async def test_check_question_yes_routes_and_alerts(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    poh_before = len(core.to_chat(POH))
    await harness.say(PATIENT, "ik heb al een tijdje pillen gespaard")
    await harness.say(PATIENT, "ja")  # typed instead of tapped
    texts = [m.text for m in core.to_chat(PATIENT)[-3:]]
    assert "113" in texts[0] and says("safety.told_practice") in texts[1]
    assert says("safety.continue") in texts[2]
    alert = core.to_chat(POH)[poh_before:]
    assert len(alert) == 1 and "gespaard" not in alert[0].text
    assert says("safety.flags.suicide") in alert[0].text
    assert await harness.app.repo.safety.flags(1) == ["suicide"]
    await harness.tap(PATIENT, label("buttons.go_on"))
    assert asks(f"{DIMS[0]}.score") in core.last_to(PATIENT).text


async def test_unanswered_check_alerts_the_poh_after_the_wait(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    poh_before = len(core.to_chat(POH))
    await harness.say(PATIENT, "mijn man reageert soms zo raar")
    assert says("safety.checks.unconscious") in core.last_to(PATIENT).text
    clock.advance(timedelta(minutes=4))
    await harness.app.tick()
    await harness.pump()
    assert len(core.to_chat(POH)) == poh_before  # not yet
    clock.advance(timedelta(minutes=2))
    await harness.app.tick()
    await harness.pump()
    alert = core.to_chat(POH)[poh_before:]
    assert len(alert) == 1 and shows(alert[0].text, "clinician.check_alert") and "raar" not in alert[0].text
    agenda = await harness.app.agenda.text(1)
    assert f"antwoord: {says('safety.check_answers.none')}" in agenda


async def test_route_during_a_hold_and_after_stop(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    """The demo bug: a second crisis message during the hold got only "Wilt u straks verder?"."""
    await setup_people(harness, clock)
    await harness.tap(PATIENT, label("buttons.consent_yes"))
    await harness.say(PATIENT, "ik zie het niet meer zitten")
    assert "113" in core.to_chat(PATIENT)[-3].text
    await harness.say(PATIENT, "ik heb net een hele strip slaappillen doorgeslikt")
    texts = [m.text for m in core.to_chat(PATIENT)[-3:]]
    assert says("safety.routes.emergency_112") in texts[0]
    assert set(await harness.app.repo.safety.flags(1)) == {"suicide", "overdose"}
    await harness.say(PATIENT, "/stop")
    await harness.say(PATIENT, "ik ben het leven zat")  # after /stop: still the question
    assert says("safety.checks.suicide") in core.last_to(PATIENT).text


async def test_check_before_consent_and_from_a_stranger(
    harness: Harness, core: FakeTelegram, clock: FrozenClock
) -> None:
    await harness.say(STRANGER, "ik heb afscheidsbrieven geschreven")
    question = core.to_chat(STRANGER)[0]
    assert says("safety.checks.suicide") in question.text
    assert says("unknown_user") in core.to_chat(STRANGER)[1].text
    core.user_taps(STRANGER, question, label("buttons.check_yes"))
    await harness.pump()
    assert "113" in core.last_to(STRANGER).text
    assert says("safety.told_practice") not in core.last_to(STRANGER).text
    await setup_people(harness, clock)
    await harness.say(PATIENT, "de laatste tijd ben ik het leven zat")  # before consent
    assert says("safety.checks.suicide") in core.last_to(PATIENT).text
    await harness.tap(PATIENT, label("buttons.check_no"))
    assert says("safety.check_thanks") in core.to_chat(PATIENT)[-2].text
    assert label("buttons.consent_yes") in str(core.last_question(PATIENT).buttons)
