"""Unit tests of the pure intake engine: every step type, back, skip, bad input, priorities."""

from __future__ import annotations

import pytest

from bot.content import Catalog
from bot.flows.engine import BACK, DECLINED, DONE, FINISH, SKIP, FlowContext, FlowEngine, FlowState
from bot.flows.model import (
    Choice,
    Command,
    Completed,
    DeleteAnswer,
    RecordConsent,
    Result,
    SaveAnswer,
    Text,
    Unsupported,
)
from tests.catalog import asks, dimension, face, label, says, theme
from tests.conftest import DIMS

CTX = FlowContext(
    practice_name="De Linde", consult_when="dinsdag 1 december om 14:30", read_aloud=False, simple_mode=False
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


@pytest.fixture
def engine(catalog: Catalog) -> FlowEngine:
    return FlowEngine(catalog, low_score_threshold=5, max_text_chars=200)


class Driver:
    def __init__(self, engine: FlowEngine, ctx: FlowContext = CTX) -> None:
        self.engine = engine
        self.ctx = ctx
        self.result = engine.start(ctx)
        self.state: FlowState = self.result.state

    def send(self, inp: object) -> Result:
        self.result = self.engine.handle(self.state, inp, self.ctx)  # type: ignore[arg-type]
        self.state = self.result.state
        return self.result

    def tap(self, value: str) -> Result:
        return self.send(Choice(self.state.seq, value))

    def text(self, text: str) -> Result:
        return self.send(Text(text))

    @property
    def question(self) -> str:
        return self.result.messages[-1].text

    def button_values(self) -> list[str]:
        return [b.value for row in self.result.messages[-1].buttons for b in row]


def test_consent_first_and_recorded(engine: FlowEngine) -> None:
    d = Driver(engine)
    assert d.state.step == "consent"
    assert "De Linde" in d.question and "112" in d.question and "/wis" in d.question
    assert d.button_values() == ["yes", "no"]
    r = d.tap("yes")
    assert RecordConsent(True) in r.effects
    assert d.state.step == "what_matters"
    assert d.state.history == []  # consent is not a step to go back to


def test_no_consent_no_questions(engine: FlowEngine) -> None:
    d = Driver(engine)
    r = d.tap("no")
    assert RecordConsent(False) in r.effects
    assert d.state.step == DECLINED
    r = d.text("hallo")
    assert not r.changed and says("consent_declined") in r.messages[0].text
    r = engine.restart_after_decline(d.state, CTX)
    assert r.state.step == "consent" and r.state.seq > d.state.seq


def test_consent_by_typing(engine: FlowEngine) -> None:
    d = Driver(engine)
    d.text("Ja!")
    assert d.state.step == "what_matters"


def answer_all(d: Driver, scores: dict[str, int] | None = None, talk: set[str] | None = None) -> None:
    scores = scores or {}
    talk = talk or set()
    d.tap("yes")
    d.text("Mijn kleinkinderen zien opgroeien")
    for dim in DIMS:
        d.tap(str(scores.get(dim, 7)))
        d.tap("yes" if dim in talk else "no")
        if d.state.step.endswith(".hard"):
            d.tap("pijn")
            d.tap(FINISH)
            d.tap(SKIP)


def test_full_intake_with_low_scores_and_priorities(engine: FlowEngine) -> None:
    d = Driver(engine)
    answer_all(d, scores={"lichaamsfuncties": 3}, talk={"lichaamsfuncties", "meedoen"})
    assert d.state.step == "discuss"
    d.text("- mijn knie\n- de nieuwe pillen")
    assert d.state.step == "priorities"
    values = d.button_values()
    assert values[:2] == ["d:lichaamsfuncties", "d:meedoen"]
    assert "t:pijn" in values and "w:0" in values and "w:1" in values
    d.tap("w:1")
    assert d.result.messages[0].edit and d.state.draft == ["w:1"]
    d.tap("d:meedoen")
    seq = d.state.seq
    r = d.tap("t:pijn")  # the third choice completes the step
    assert d.state.step == DONE
    again = d.send(Choice(seq, "t:pijn"))  # that last tap twice: quiet, nothing sent again
    assert again.messages == [] and again.toast == engine.catalog.t("toast.already")
    assert Completed() in r.effects
    saved = {e.key: e.value for e in r.effects if isinstance(e, SaveAnswer)}
    assert [p["label"] for p in saved["priorities"]] == [
        "de nieuwe pillen",
        dimension("meedoen", emoji=True),
        theme("pijn", emoji=True),
    ]
    assert says("closing", when=CTX.consult_when) in r.messages[-1].text
    assert d.state.answers["lichaamsfuncties.hard"] == ["pijn"]
    assert "mentaal_welbevinden.hard" not in d.state.answers  # high score: no follow-up


def test_priority_untap_and_done_early(engine: FlowEngine) -> None:
    d = Driver(engine)
    answer_all(d, talk={"zingeving", "meedoen"})
    d.text("geld")
    d.tap("d:zingeving")
    d.tap("d:zingeving")  # second tap removes it
    assert d.state.draft == []
    d.tap("w:0")
    r = d.tap(FINISH)
    assert d.state.step == DONE
    assert [p["label"] for p in d.state.answers["priorities"]] == ["geld"]
    assert any(isinstance(e, SaveAnswer) and e.key == "priorities" for e in r.effects)


def test_priorities_skipped_when_nothing_marked(engine: FlowEngine) -> None:
    d = Driver(engine)
    answer_all(d)
    r = d.tap(SKIP)  # nothing to discuss either
    assert d.state.step == DONE
    assert d.state.answers["priorities"] == []
    assert Completed() in r.effects


def test_low_score_follow_up_with_text(engine: FlowEngine) -> None:
    d = Driver(engine)
    d.tap("yes")
    d.tap(SKIP)
    d.tap("5")  # threshold is inclusive
    d.tap("no")
    assert d.state.step == "lichaamsfuncties.hard"
    assert asks("lichaamsfuncties.hard") in d.question
    d.tap("geld")
    assert label("buttons.selected_mark") in str(d.result.messages[0].buttons)
    d.tap("slapen")
    d.tap("geld")  # untick
    d.tap(FINISH)
    assert d.state.answers["lichaamsfuncties.hard"] == ["slapen"]
    d.text("Ik lig vaak wakker van de pijn")
    assert d.state.answers["lichaamsfuncties.hard_text"] == "Ik lig vaak wakker van de pijn"
    assert d.state.step == "mentaal_welbevinden.score"


def test_back_to_higher_score_drops_follow_up_answers(engine: FlowEngine) -> None:
    d = Driver(engine)
    d.tap("yes")
    d.tap(SKIP)
    d.tap("2")
    d.tap("no")
    d.tap("pijn")
    d.tap(FINISH)
    assert d.state.step == "lichaamsfuncties.hard_text"
    d.send(Command("back"))
    assert d.state.step == "lichaamsfuncties.hard"
    assert d.state.draft == ["pijn"]  # the earlier choice is shown again
    d.tap(BACK)
    d.tap(BACK)
    assert d.state.step == "lichaamsfuncties.score"
    r = d.tap("9")
    assert d.state.step == "lichaamsfuncties.talk"
    r = d.tap("no")
    assert DeleteAnswer("lichaamsfuncties.hard") in r.effects
    assert "lichaamsfuncties.hard" not in d.state.answers
    assert d.state.step == "mentaal_welbevinden.score"


def test_back_at_first_question(engine: FlowEngine) -> None:
    d = Driver(engine)
    d.tap("yes")
    r = d.send(Command("back"))
    assert not r.changed and d.state.step == "what_matters"
    assert says("bad.first_step") in r.messages[0].text
    assert r.messages[-1].seq == d.state.seq  # the question again


def test_skip_deletes_earlier_answer(engine: FlowEngine) -> None:
    d = Driver(engine)
    d.tap("yes")
    d.text("gezondheid")
    d.send(Command("back"))
    r = d.tap(SKIP)
    assert DeleteAnswer("what_matters") in r.effects
    assert "what_matters" not in d.state.answers


@pytest.mark.parametrize(
    ("inp", "expected"),
    [
        (Text("hallo"), says("bad.use_buttons")),
        (Text("11"), says("bad.scale_range", min=0, max=10)),
        (Text("-3"), says("bad.scale_range", min=0, max=10)),
        (Text("😀😀"), says("bad.use_buttons")),
        (Unsupported("sticker"), says("bad.media")),
        (Unsupported("photo"), says("bad.media")),
        (Unsupported("location"), says("bad.media")),
        (Unsupported("voice"), says("bad.voice")),
        (Unsupported("edited"), says("bad.edited")),
        (Command("unknown"), says("bad.unknown_command")),
        (Choice(999, "3"), says("bad.old_button")),
    ],
)
def test_bad_input_on_scale_keeps_state(engine: FlowEngine, inp: object, expected: str) -> None:
    d = Driver(engine)
    d.tap("yes")
    d.tap(SKIP)
    before = d.state
    r = d.send(inp)
    assert not r.changed
    assert r.state == before
    assert expected in r.messages[0].text
    assert r.messages[-1].seq == before.seq and r.messages[-1].buttons  # the question again


def test_typed_score_is_accepted(engine: FlowEngine) -> None:
    d = Driver(engine)
    d.tap("yes")
    d.tap(SKIP)
    d.text(" 8 ")
    assert d.state.answers["lichaamsfuncties.score"] == 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("   ", says("bad.text_empty")),
        ("🙂🙂🙂", says("bad.text_unclear")),
        ("x" * 201, says("bad.text_too_long", max=200)),
    ],
)
def test_bad_free_text(engine: FlowEngine, text: str, expected: str) -> None:
    d = Driver(engine)
    d.tap("yes")
    r = d.text(text)
    assert not r.changed and expected in r.messages[0].text
    assert d.state.step == "what_matters"


def test_double_tap_is_quiet_and_old_button_is_explained(engine: FlowEngine) -> None:
    d = Driver(engine)
    d.tap("yes")
    d.tap(SKIP)
    seq = d.state.seq
    d.tap("6")
    r = d.send(Choice(seq, "6"))  # the same tap again
    assert not r.changed and r.messages == [] and r.toast
    r = d.send(Choice(seq, "2"))  # another button of that old question
    assert not r.changed and says("bad.old_button") in r.messages[0].text
    assert d.state.answers["lichaamsfuncties.score"] == 6


def test_unknown_button_value_on_current_question(engine: FlowEngine) -> None:
    d = Driver(engine)
    d.tap("yes")
    d.tap(SKIP)
    d.tap("4")
    d.tap("yes")
    r = d.tap("not-a-theme")
    assert not r.changed and says("bad.old_button") in r.messages[0].text


def test_done_is_final(engine: FlowEngine) -> None:
    d = Driver(engine)
    answer_all(d)
    d.tap(SKIP)
    r = d.text("nog iets")
    assert not r.changed and says("already_done", when=CTX.consult_when) in r.messages[0].text
    r = d.send(Command("back"))
    assert not r.changed and says("bad.nothing_to_undo") in r.messages[0].text


def test_state_round_trips_through_json(engine: FlowEngine) -> None:
    import json

    d = Driver(engine)
    d.tap("yes")
    d.text("familie")
    d.tap("3")
    restored = FlowState.from_dict(json.loads(json.dumps(d.state.to_dict())))
    assert restored == d.state
    r = engine.handle(restored, Choice(restored.seq, "yes"), CTX)
    assert r.state.step == "lichaamsfuncties.hard"


def test_every_button_fits_telegram_callback_data(engine: FlowEngine) -> None:
    d = Driver(engine)
    answer_all(d, scores=dict.fromkeys(DIMS, 1), talk=set(DIMS))
    d.text("\n".join(f"onderwerp nummer {i} met een heel lange omschrijving erbij" for i in range(10)))
    seq = 10**6
    for message in d.result.messages:
        for row in message.buttons:
            for button in row:
                assert len(f"q:{seq}:{button.value}".encode()) <= 64
                assert len(button.label) <= 45


def test_settings_are_asked_only_when_not_chosen(engine: FlowEngine) -> None:
    from dataclasses import replace

    from bot.flows.model import SetPreference

    d = Driver(engine, replace(CTX, read_aloud=None, simple_mode=None))
    assert d.state.step == "read_aloud" and d.result.messages[-1].speak  # always spoken
    assert d.button_values() == ["yes", "no"]
    d.text("ja")
    assert SetPreference("read_aloud", True) in d.result.effects
    assert d.state.step == "simple_mode"
    d.tap("yes")
    assert SetPreference("simple_mode", True) in d.result.effects
    assert d.state.step == "consent"
    d.ctx = replace(d.ctx, read_aloud=True, simple_mode=True)  # the service reloads it from the patient
    d.tap("yes")
    # Simple mode shows at once: the open question in one short sentence.
    assert d.question == asks("what_matters", simple=True)
    only_simple = Driver(engine, replace(CTX, simple_mode=None))
    assert only_simple.state.step == "simple_mode"


def test_simple_mode_uses_faces_and_stores_the_mapping(engine: FlowEngine) -> None:
    from dataclasses import replace

    d = Driver(engine, replace(CTX, simple_mode=True))
    d.tap("yes")
    d.tap("__skip")
    labels = [b.label for row in d.result.messages[-1].buttons for b in row]
    assert labels[:5] == [face(score) for score in (1, 3, 5, 7, 9)]
    assert all(len(row) == 1 for row in d.result.messages[-1].buttons)  # big buttons, one per row
    assert d.question.count(".") + d.question.count("?") <= 1  # one short sentence
    d.tap("7")
    assert SaveAnswer("lichaamsfuncties.score", 7) in d.result.effects
    assert SaveAnswer("lichaamsfuncties.score_face", face(7)) in d.result.effects
    assert d.state.step == "lichaamsfuncties.talk"
    assert [len(row) for row in d.result.messages[-1].buttons] == [1, 1, 1]  # ja / nee / terug
    d.tap("no")
    d.text("4")  # a typed number still works in simple mode
    assert SaveAnswer("mentaal_welbevinden.score", 4) in d.result.effects
