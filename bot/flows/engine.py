"""Declarative conversations: the intake (``content/nl/intake.yaml``) and the patient's own plan
(``content/nl/plan.yaml``) are data run by one engine.

The engine is pure. It gets the definition and texts at construction and, per call, the
current :class:`FlowState` and one input; it returns the new state, the messages to show
and the effects to store. It never reads the clock, the network or the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bot.content import Catalog, ContentError, Dimension
from bot.flows.model import (
    Button,
    Choice,
    Command,
    Completed,
    DeleteAnswer,
    Effect,
    Input,
    OutMessage,
    RecordConsent,
    Result,
    SaveAnswer,
    SetPreference,
    Text,
    Unsupported,
)
from bot.nlp.items import split_items
from bot.numbers import whole_number

INTAKE_FLOW = "intake"
PLAN_FLOW = "plan"
DONE = "done"
DECLINED = "declined"

# Button values with a meaning of their own (never a theme or option id).
BACK = "__back"
SKIP = "__skip"
FINISH = "__done"
CONTINUE = "__go"
WAIT = "__wait"

STEP_TYPES = {
    "setting",
    "consent",
    "text",
    "scale",
    "yesno",
    "choices",
    "priorities",
    "pick",
    "time",
    "confirm",
    "end",
}
SETTINGS = ("read_aloud", "simple_mode")
YES_WORDS = {"ja", "j", "jawel", "jazeker", "yes", "ok", "oke", "oké", "goed", "prima", "👍"}
NO_WORDS = {"nee", "n", "neen", "no", "nope", "liever niet", "👎"}
BUTTON_LABEL_MAX = 40


@dataclass(frozen=True)
class Step:
    key: str
    id: str
    type: str
    prompt: str = ""
    optional: bool = False
    when: str | None = None
    options: str | None = None
    again: str | None = None  # confirm: the step to go back to on "no"
    setting: str | None = None  # setting: which preference the answer sets
    simple_prompt: str = ""  # the prompt in simple mode (one short sentence)
    speak: bool = False  # always read aloud (the question whether to read aloud)
    minimum: int = 0
    maximum: int = 10
    dimension: Dimension | None = None
    index: int = 0
    total: int = 0


@dataclass(frozen=True)
class FlowContext:
    """Per-conversation facts the texts need (already formatted for the patient)."""

    practice_name: str
    consult_when: str
    read_aloud: bool | None = None  # None: not asked yet
    simple_mode: bool | None = None


@dataclass
class FlowState:
    step: str
    seq: int = 0
    answers: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    draft: list[str] = field(default_factory=list)
    last_choice: list[Any] | None = None
    hold: bool = False  # the flow waits until the patient says they want to go on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowState:
        return cls(**data)

    @property
    def finished(self) -> bool:
        return self.step == DONE


def expand_steps(catalog: Catalog, definition: dict[str, Any]) -> list[Step]:
    """Turn the YAML definition into a flat list of concrete steps."""
    steps: list[Step] = []
    for raw in definition.get("steps", []):
        if "for_each" in raw:
            if raw["for_each"] != "dimension":
                raise ContentError(f"unknown for_each {raw['for_each']!r}")
            total = len(catalog.dimensions)
            for index, dim in enumerate(catalog.dimensions, start=1):
                for sub in raw["steps"]:
                    steps.append(_make_step(sub, f"{dim.id}.{sub['id']}", dim, index, total))
        else:
            steps.append(_make_step(raw, raw["id"], None, 0, 0))
    keys = [s.key for s in steps]
    if len(set(keys)) != len(keys):
        raise ContentError("intake step ids are not unique")
    if not steps or steps[-1].type != "end":
        raise ContentError("a flow must close with an end step")
    first = next((s for s in steps if s.type != "setting"), None)
    if definition.get("id") == INTAKE_FLOW and (first is None or first.type != "consent"):
        raise ContentError("the intake must ask consent before any question")
    options = definition.get("options") or {}
    for step in steps:
        if step.type == "setting" and (step.setting not in SETTINGS or step.options not in options):
            raise ContentError(f"step {step.key!r}: a setting needs a known 'setting' and 'options'")
        if step.type in ("pick", "time") and step.options not in options:
            raise ContentError(f"step {step.key!r}: unknown options {step.options!r}")
        if step.type == "confirm" and step.again not in keys:
            raise ContentError(f"step {step.key!r}: 'again' must name a step")
    return steps


def _make_step(raw: dict[str, Any], key: str, dim: Dimension | None, index: int, total: int) -> Step:
    step_type = raw.get("type")
    if step_type not in STEP_TYPES:
        raise ContentError(f"step {key!r}: unknown type {step_type!r}")
    when = raw.get("when")
    if when is not None and when not in CONDITIONS and not ANSWER_IS.fullmatch(when):
        raise ContentError(f"step {key!r}: unknown condition {when!r}")
    return Step(
        key=key,
        id=raw["id"],
        type=step_type,
        prompt=raw.get("prompt", ""),
        optional=bool(raw.get("optional", False)),
        when=when,
        options=raw.get("options"),
        again=raw.get("again"),
        setting=raw.get("setting"),
        simple_prompt=raw.get("simple_prompt", ""),
        speak=bool(raw.get("speak", False)),
        minimum=int(raw.get("min", 0)),
        maximum=int(raw.get("max", 10)),
        dimension=dim,
        index=index,
        total=total,
    )


def _low_score(engine: FlowEngine, step: Step, answers: dict[str, Any], ctx: FlowContext) -> bool:
    if step.dimension is None:
        return False
    score = answers.get(f"{step.dimension.id}.score")
    return isinstance(score, int) and score <= engine.low_score_threshold


def _unset(engine: FlowEngine, step: Step, answers: dict[str, Any], ctx: FlowContext) -> bool:
    return getattr(ctx, step.setting or "", None) is None


CONDITIONS: dict[str, Callable[[FlowEngine, Step, dict[str, Any], FlowContext], bool]] = {
    "low_score": _low_score,
    "unset": _unset,  # a setting step: only when the patient has not chosen yet
}
# ``when: often == weekdays``: the step is asked only after that answer.
ANSWER_IS = re.compile(r"(\w+) (==|!=) (\w+)")


def _applies(engine: FlowEngine, step: Step, answers: dict[str, Any], ctx: FlowContext) -> bool:
    if step.when is None:
        return True
    if step.when in CONDITIONS:
        return CONDITIONS[step.when](engine, step, answers, ctx)
    match = ANSWER_IS.fullmatch(step.when)
    assert match is not None
    return (str(answers.get(match[1])) == match[3]) == (match[2] == "==")


TIME_TEXT = re.compile(r"(\d{1,2})(?:[:.](\d{2}))?(?: ?uur)?")


def parse_time(text: str) -> str | None:
    """``8``, ``8 uur``, ``8:30``, ``08.30`` -> ``08:30``; None when it is not a time of day."""
    match = TIME_TEXT.fullmatch(_normalise(text))
    if not match:
        return None
    hour, minute = int(match[1]), int(match[2] or 0)
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def _normalise(text: str) -> str:
    return " ".join(text.casefold().strip().strip(".!?,").split())


def _toggled(draft: list[str], value: str) -> list[str]:
    return [v for v in draft if v != value] if value in draft else [*draft, value]


def _shorten(label: str) -> str:
    label = " ".join(label.split())
    return label if len(label) <= BUTTON_LABEL_MAX else label[: BUTTON_LABEL_MAX - 1] + "…"


class FlowEngine:
    def __init__(
        self,
        catalog: Catalog,
        flow: str = INTAKE_FLOW,
        *,
        low_score_threshold: int = 5,
        max_text_chars: int = 2000,
    ) -> None:
        self.catalog = catalog
        self.flow = flow
        self.definition = catalog.flow(flow)
        self.low_score_threshold = low_score_threshold
        self.max_text_chars = max_text_chars
        self.steps = expand_steps(catalog, self.definition)
        self._by_key = {s.key: s for s in self.steps}
        self.step_types = {s.key: s.type for s in self.steps}
        self._position = {s.key: i for i, s in enumerate(self.steps)}
        self.max_priorities = int(
            next((s for s in self.definition["steps"] if s.get("type") == "priorities"), {}).get("max", 3)
        )
        # Message keys for the end of this flow and for input after it (see the flow's YAML).
        self.closing_key = str(self.definition.get("closing", "closing"))
        self.done_key = str(self.definition.get("done", "already_done"))

    # -- public API -----------------------------------------------------------------
    def start(self, ctx: FlowContext, *, after_seq: int = 0) -> Result:
        """A fresh intake. ``after_seq`` keeps question numbers rising across consults, so
        buttons of an earlier conversation never match a new question."""
        state = FlowState(step=self._first(ctx), seq=after_seq + 1)
        return Result(state=state, messages=self.ask(state, ctx), changed=True)

    def restart_after_decline(self, state: FlowState, ctx: FlowContext) -> Result:
        new = replace(state, step=self._first(ctx), seq=state.seq + 1, draft=[])
        return Result(state=new, messages=self.ask(new, ctx), changed=True)

    def _first(self, ctx: FlowContext) -> str:
        return next(s.key for s in self.steps if _applies(self, s, {}, ctx))

    def hold(self, state: FlowState, ctx: FlowContext, notes: Iterable[str]) -> Result:
        """Stop the flow after ``notes`` (e.g. where to get help now); go on only when the patient
        taps to continue. Answers stay as they are."""
        new = replace(state, hold=True, seq=state.seq + 1)
        return Result(new, self.ask(new, ctx, notes), changed=True)

    def release(
        self, state: FlowState, ctx: FlowContext, notes: Iterable[str] = (), *, tap: list[Any] | None = None
    ) -> Result:
        """Go on after a hold: the current question again, after ``notes``. ``tap`` is the button
        that did it, so a double tap on it is recognised."""
        new = replace(state, hold=False, seq=state.seq + 1, last_choice=tap or state.last_choice)
        return Result(new, self.ask(new, ctx, notes), changed=True)

    def ask(self, state: FlowState, ctx: FlowContext, prefix: Iterable[str] = ()) -> list[OutMessage]:
        """The current question (again), after optional short notes."""
        notes = [OutMessage(text=p) for p in prefix]
        if state.hold:
            b = self.catalog.t
            buttons = ((Button(b("buttons.go_on"), CONTINUE),), (Button(b("buttons.not_now"), WAIT),))
            return [*notes, OutMessage(b("safety.continue"), buttons=buttons, seq=state.seq)]
        if state.step == DONE:
            return [*notes, OutMessage(self.catalog.t(self.done_key, when=ctx.consult_when), private=True)]
        if state.step == DECLINED:
            return [*notes, OutMessage(self.catalog.t("consent_declined"))]
        return [*notes, self._question(state, ctx)]

    def handle(self, state: FlowState, inp: Input, ctx: FlowContext) -> Result:
        if state.hold:
            return self._held(state, inp, ctx)
        if state.step in (DONE, DECLINED):
            if isinstance(inp, Command) and inp.name == "back" and state.step == DONE:
                return Result(state, [OutMessage(self.catalog.t("bad.nothing_to_undo"))])
            if isinstance(inp, Choice):
                return Result(state, self.ask(state, ctx), toast=self.catalog.t("toast.old"))
            return Result(state, self.ask(state, ctx))
        if isinstance(inp, Command):
            if inp.name == "back":
                return self._back(state, ctx)
            return self._reask(state, ctx, "bad.unknown_command")
        if isinstance(inp, Unsupported):
            key = {"voice": "bad.voice", "edited": "bad.edited"}.get(inp.kind, "bad.media")
            return self._reask(state, ctx, key)
        step = self._by_key[state.step]
        if isinstance(inp, Choice):
            if inp.seq != state.seq:
                return self._stale(state, inp, ctx)
            if inp.value == BACK:
                return self._back(state, ctx)
            return self._choice(step, state, inp.value, ctx)
        assert isinstance(inp, Text)
        return self._text(step, state, inp.text, ctx)

    def candidates(self, answers: dict[str, Any]) -> list[tuple[str, str]]:
        """Everything the patient marked or wrote, as (id, label) for the priorities step."""
        out: list[tuple[str, str]] = []
        seen: set[str] = set()

        def add(cid: str, label: str) -> None:
            if label.casefold() not in seen:
                seen.add(label.casefold())
                out.append((cid, label))

        for dim in self.catalog.dimensions:
            if answers.get(f"{dim.id}.talk") is True:
                add(f"d:{dim.id}", f"{dim.emoji} {dim.name}")
        for dim in self.catalog.dimensions:
            for theme_id in answers.get(f"{dim.id}.hard") or []:
                theme = self.catalog.theme(theme_id)
                add(f"t:{theme.id}", f"{theme.emoji} {theme.label}")
        for i, item in enumerate(split_items(answers.get("discuss") or "")):
            add(f"w:{i}", item)
        return out

    # -- transitions ----------------------------------------------------------------
    def _held(self, state: FlowState, inp: Input, ctx: FlowContext) -> Result:
        if isinstance(inp, Choice) and inp.seq == state.seq and inp.value == CONTINUE:
            return self.release(state, ctx, tap=[state.seq, CONTINUE])
        if isinstance(inp, Choice) and inp.seq == state.seq and inp.value == WAIT:
            return Result(state, [OutMessage(self.catalog.t("safety.wait"))])
        if isinstance(inp, Choice) and inp.seq != state.seq:
            return self._stale(state, inp, ctx)
        return Result(state, self.ask(state, ctx))

    def _reask(self, state: FlowState, ctx: FlowContext, key: str, **params: Any) -> Result:
        return Result(state, self.ask(state, ctx, [self.catalog.t(key, **params)]))

    def _stale(self, state: FlowState, inp: Choice, ctx: FlowContext) -> Result:
        if state.last_choice == [inp.seq, inp.value]:
            # A double tap: the first tap already moved on. Say so quietly.
            return Result(state, [], toast=self.catalog.t("toast.already"))
        result = self._reask(state, ctx, "bad.old_button")
        result.toast = self.catalog.t("toast.old")
        return result

    def _back(self, state: FlowState, ctx: FlowContext) -> Result:
        if not state.history:
            return self._reask(state, ctx, "bad.first_step")
        history = list(state.history)
        key = history.pop()
        step = self._by_key[key]
        draft = list(state.answers.get(key) or []) if step.type == "choices" else []
        new = replace(state, step=key, seq=state.seq + 1, history=history, draft=draft)
        return Result(new, [self._question(new, ctx)], changed=True)

    def _advance(
        self,
        state: FlowState,
        answers: dict[str, Any],
        effects: list[Effect],
        ctx: FlowContext,
        *,
        choice: str | None = None,
    ) -> Result:
        current = state.step
        history = [*state.history, current] if self._by_key[current].type != "consent" else []
        pos = self._position[current] + 1
        while True:
            step = self.steps[pos]
            if not _applies(self, step, answers, ctx):
                if step.key in answers:
                    answers.pop(step.key)
                    effects.append(DeleteAnswer(step.key))
                pos += 1
                continue
            if step.type == "priorities" and not self.candidates(answers):
                answers[step.key] = []
                effects.append(SaveAnswer(step.key, []))
                pos += 1
                continue
            break
        last = [state.seq, choice] if choice is not None else None
        new = FlowState(
            step=step.key,
            seq=state.seq + 1,
            answers=answers,
            history=history,
            draft=[],
            last_choice=last,
        )
        if step.type == "end":
            new.step = DONE
            effects.append(Completed())
            return Result(
                new,
                [OutMessage(self.catalog.t(self.closing_key, when=ctx.consult_when), private=True)],
                effects,
                changed=True,
            )
        return Result(new, [self._question(new, ctx)], effects, changed=True)

    def _save(
        self,
        step: Step,
        state: FlowState,
        value: Any,
        ctx: FlowContext,
        *,
        choice: str | None = None,
    ) -> Result:
        answers = dict(state.answers)
        effects: list[Effect] = []
        if value is None:
            if step.key in answers:
                answers.pop(step.key)
                effects.append(DeleteAnswer(step.key))
        else:
            answers[step.key] = value
            effects.append(SaveAnswer(step.key, value))
        return self._advance(state, answers, effects, ctx, choice=choice)

    def _choice(self, step: Step, state: FlowState, value: str, ctx: FlowContext) -> Result:
        if step.type == "setting" and value in ("yes", "no"):
            return self._setting(step, state, value == "yes", ctx, choice=value)
        if step.type == "consent" and value in ("yes", "no"):
            return self._consent(state, value == "yes", ctx, choice=value)
        if step.type == "text" and value == SKIP and step.optional:
            return self._save(step, state, None, ctx, choice=value)
        tapped = whole_number(value) if step.type == "scale" else None
        if tapped is not None and step.minimum <= tapped <= step.maximum:
            result = self._save(step, state, tapped, ctx, choice=value)
            face = self._faces().get(value) if ctx.simple_mode else None
            if face:  # simple mode: keep which face was tapped, next to the score it stands for
                result.effects.append(SaveAnswer(f"{step.key}_face", face))
            return result
        if step.type == "yesno" and value in ("yes", "no"):
            return self._save(step, state, value == "yes", ctx, choice=value)
        if step.type in ("pick", "time") and value in {o.value for o in self._options(step)}:
            return self._save(step, state, value, ctx, choice=value)
        if step.type == "confirm" and value in ("yes", "no"):
            return self._confirm(step, state, value == "yes", ctx, choice=value)
        if step.type == "choices":
            return self._toggle_choice(step, state, value, ctx)
        if step.type == "priorities":
            return self._toggle_priority(step, state, value, ctx)
        # A button value this step does not know: treat like an old button.
        return self._stale(state, Choice(state.seq - 1, value), ctx)

    def _text(self, step: Step, state: FlowState, text: str, ctx: FlowContext) -> Result:
        word = _normalise(text)
        if step.type == "text":
            problem = self._check_text(step, text)
            if problem:
                return self._reask(state, ctx, problem, max=self.max_text_chars)
            return self._save(step, state, text.strip(), ctx)
        if step.type == "scale":
            number = whole_number(word)
            if number is not None:
                if step.minimum <= number <= step.maximum:
                    return self._save(step, state, number, ctx)
                return self._reask(state, ctx, "bad.scale_range", min=step.minimum, max=step.maximum)
            return self._reask(state, ctx, "bad.use_buttons")
        if step.type in ("yesno", "consent", "confirm", "setting") and (
            word in YES_WORDS or word in NO_WORDS
        ):
            yes = word in YES_WORDS
            if step.type == "setting":
                return self._setting(step, state, yes, ctx)
            if step.type == "consent":
                return self._consent(state, yes, ctx)
            if step.type == "confirm":
                return self._confirm(step, state, yes, ctx)
            return self._save(step, state, yes, ctx)
        if step.type in ("pick", "time"):
            for option in self._options(step):
                if word in (_normalise(option.label), _normalise(option.value)):
                    return self._save(step, state, option.value, ctx)
        if step.type == "time":
            moment = parse_time(text)
            if moment is not None:
                return self._save(step, state, moment, ctx)
            return self._reask(state, ctx, "bad.time")
        return self._reask(state, ctx, "bad.use_buttons")

    def _setting(
        self, step: Step, state: FlowState, value: bool, ctx: FlowContext, *, choice: str | None = None
    ) -> Result:
        """A preference (read aloud, simple mode): stored with the patient, used from the next message."""
        assert step.setting is not None
        new_ctx = replace(ctx, **{step.setting: value})
        return self._advance(
            state, dict(state.answers), [SetPreference(step.setting, value)], new_ctx, choice=choice
        )

    def _faces(self) -> dict[str, str]:
        """Simple mode: score (as text) -> face, from the flow's ``faces`` list."""
        return {str(f["value"]): str(f["label"]) for f in self.definition.get("faces") or []}

    def _confirm(
        self, step: Step, state: FlowState, yes: bool, ctx: FlowContext, *, choice: str | None = None
    ) -> Result:
        if yes:
            return self._save(step, state, True, ctx, choice=choice)
        # "No, again": back to the named step; earlier answers stay as a starting point.
        assert step.again is not None
        position = self._position[step.again]
        history = [h for h in state.history if self._position[h] < position]
        last = [state.seq, choice] if choice is not None else None
        new = replace(state, step=step.again, seq=state.seq + 1, history=history, draft=[], last_choice=last)
        return Result(new, self.ask(new, ctx, [self.catalog.t("plan.again")]), changed=True)

    def _check_text(self, step: Step, text: str) -> str | None:
        stripped = text.strip()
        if not stripped:
            return "bad.text_empty" if step.optional else "bad.text_required"
        if len(stripped) > self.max_text_chars:
            return "bad.text_too_long"
        if not any(ch.isalnum() for ch in stripped):
            return "bad.text_unclear"
        return None

    def _consent(
        self, state: FlowState, given: bool, ctx: FlowContext, *, choice: str | None = None
    ) -> Result:
        if given:
            return self._advance(state, dict(state.answers), [RecordConsent(True)], ctx, choice=choice)
        last = [state.seq, choice] if choice is not None else None
        new = replace(state, step=DECLINED, seq=state.seq + 1, last_choice=last)
        return Result(
            new,
            [OutMessage(self.catalog.t("consent_declined"))],
            [RecordConsent(False)],
            changed=True,
        )

    def _toggle_choice(self, step: Step, state: FlowState, value: str, ctx: FlowContext) -> Result:
        if value == FINISH:
            if len(state.draft) < step.minimum:
                return self._reask(state, ctx, "bad.choose_at_least")
            return self._save(step, state, list(state.draft), ctx, choice=value)
        valid = {option.value for option in self._options(step)}
        if value not in valid:
            return self._stale(state, Choice(state.seq - 1, value), ctx)
        return self._redraw(replace(state, draft=_toggled(state.draft, value)), ctx)

    def _redraw(self, state: FlowState, ctx: FlowContext) -> Result:
        """A multi-select tap: the same question again, edited in place, with a quiet toast."""
        return Result(
            state,
            [replace(self._question(state, ctx), edit=True)],
            changed=True,
            toast=self.catalog.t("toast.saved"),
        )

    def _toggle_priority(self, step: Step, state: FlowState, value: str, ctx: FlowContext) -> Result:
        candidates = dict(self.candidates(state.answers))
        if value == FINISH:
            chosen = [{"id": c, "label": candidates[c]} for c in state.draft if c in candidates]
            return self._save(step, state, chosen, ctx, choice=value)
        if value not in candidates:
            return self._stale(state, Choice(state.seq - 1, value), ctx)
        new = replace(state, draft=_toggled(state.draft, value))
        if len(new.draft) >= min(self.max_priorities, len(candidates)):
            return self._toggle_priority(step, new, FINISH, ctx)
        return self._redraw(new, ctx)

    # -- rendering ------------------------------------------------------------------
    def _options(self, step: Step) -> list[Button]:
        if step.options == "themes":
            return [Button(f"{t.emoji} {t.label}", t.id) for t in self.catalog.themes]
        listed = (self.definition.get("options") or {}).get(step.options)
        if listed is None:
            raise ContentError(f"step {step.key!r}: unknown options {step.options!r}")
        return [Button(str(o["label"]), str(o["value"])) for o in listed]

    def label(self, step_id: str, answers: dict[str, Any]) -> str:
        """The button label of the answer to a pick/choices step (for summaries)."""
        step = self._by_key[step_id]
        labels = {o.value: o.label for o in self._options(step)}
        value = answers.get(step_id)
        if isinstance(value, list):
            return ", ".join(labels.get(v, v) for v in value)
        return labels.get(str(value), str(value))

    def _question(self, state: FlowState, ctx: FlowContext) -> OutMessage:
        step = self._by_key[state.step]
        b = self.catalog.t
        params: dict[str, Any] = {
            "dimension": step.dimension,
            "index": step.index,
            "total": step.total,
            "max": self.max_priorities,
            "answers": state.answers,
            "label": lambda step_id: self.label(step_id, state.answers),
        }
        rows: list[tuple[Button, ...]] = []
        simple = bool(ctx.simple_mode)
        prompt = step.simple_prompt if simple and step.simple_prompt else step.prompt
        text = self.catalog.render_string(prompt, **params) if prompt else ""
        private = step.type in ("confirm", "priorities")  # the patient's own words are in it
        if step.type == "setting":
            rows += [(o,) for o in self._options(step)]
        elif step.type == "consent":
            text = b("consent", practice=ctx.practice_name)
            rows = [(Button(b("buttons.consent_yes"), "yes"),), (Button(b("buttons.consent_no"), "no"),)]
        elif step.type == "text":
            if step.optional:
                rows.append((Button(b("buttons.skip"), SKIP),))
        elif step.type == "scale" and simple and self._faces():
            rows += [(Button(face, value),) for value, face in self._faces().items()]
        elif step.type == "scale":
            numbers = [Button(str(n), str(n)) for n in range(step.minimum, step.maximum + 1)]
            half = (len(numbers) + 1) // 2
            rows += [tuple(numbers[:half]), tuple(numbers[half:])]
        elif step.type == "yesno":
            yes, no = Button(b("buttons.answer_yes"), "yes"), Button(b("buttons.answer_no"), "no")
            rows += [(yes,), (no,)] if simple else [(yes, no)]
        elif step.type in ("pick", "time"):
            options = self._options(step)
            per_row = 3 if step.type == "time" else 1
            rows += [tuple(options[i : i + per_row]) for i in range(0, len(options), per_row)]
        elif step.type == "confirm":
            rows += [(Button(b("buttons.plan_yes"), "yes"),), (Button(b("buttons.plan_again"), "no"),)]
        elif step.type == "choices":
            mark = b("buttons.selected_mark")
            options = [
                Button(f"{mark} {o.label}" if o.value in state.draft else o.label, o.value)
                for o in self._options(step)
            ]
            per_row = 1 if simple else 2
            rows += [tuple(options[i : i + per_row]) for i in range(0, len(options), per_row)]
            rows.append((Button(b("buttons.done"), FINISH),))
        elif step.type == "priorities":
            candidates = self.candidates(state.answers)
            labels = dict(candidates)
            if state.draft:
                chosen = "\n".join(f"{i}. {labels[c]}" for i, c in enumerate(state.draft, 1) if c in labels)
                text = f"{text}\n\n{b('chosen_so_far')}\n{chosen}"
            for cid, label in candidates:
                rank = state.draft.index(cid) + 1 if cid in state.draft else None
                rows.append((Button(f"{rank}. {_shorten(label)}" if rank else _shorten(label), cid),))
            rows.append((Button(b("buttons.done"), FINISH),))
        if state.history:
            rows.append((Button(b("buttons.back"), BACK),))
        return OutMessage(text=text, buttons=tuple(rows), seq=state.seq, private=private, speak=step.speak)
