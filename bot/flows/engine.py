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

from pydantic import ValidationError

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
    Text,
    Unsupported,
)
from bot.flows.steps import (
    BACK,
    CONTINUE,
    FINISH,
    SKIP,
    STEP_TYPES,
    WAIT,
    ConsentStep,
    FlowSpec,
    ForEachSpec,
    PrioritiesStep,
    SettingStep,
    StepSpec,
    normalise,
)
from bot.nlp.items import split_items

__all__ = ["BACK", "CONTINUE", "FINISH", "SKIP", "WAIT", "FlowContext", "FlowEngine", "FlowState", "Step"]

INTAKE_FLOW = "intake"
PLAN_FLOW = "plan"
DONE = "done"
DECLINED = "declined"
FORWARDED = "forwarded"  # answer key: the free-text answers that came as a forwarded message


@dataclass(frozen=True)
class Step:
    """One concrete step of a flow: its spec (type, fields, behaviour, see ``bot/flows/steps.py``)
    and, inside ``for_each: dimension``, the dimension it asks about."""

    key: str
    spec: StepSpec
    dimension: Dimension | None = None
    index: int = 0
    total: int = 0

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def type(self) -> str:
        return self.spec.kind

    @property
    def prompt(self) -> str:
        return self.spec.prompt

    @property
    def when(self) -> str | None:
        return self.spec.when


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


def expand_steps(catalog: Catalog, definition: dict[str, Any], source: str = "") -> list[Step]:
    """Parse a flow definition (the YAML as a dict) and flatten it into concrete steps. Anything
    wrong fails here, naming ``source`` (the file), the step and the field."""
    return _flatten(catalog, parse_flow(definition, source), source or _default_source(definition))


def parse_flow(definition: dict[str, Any], source: str = "") -> FlowSpec:
    """The flow YAML (as a dict) as a :class:`FlowSpec`, or a ContentError naming what is wrong."""
    try:
        return FlowSpec.model_validate(definition)
    except ValidationError as exc:
        where = source or _default_source(definition)
        raise ContentError(f"{where}: {_described(definition, exc)}") from None


def _default_source(definition: dict[str, Any]) -> str:
    return f"flow {definition.get('id', '?')!r}"


def _flatten(catalog: Catalog, flow: FlowSpec, where: str) -> list[Step]:
    """The concrete steps (``for_each`` expanded), after the checks that span steps."""
    steps: list[Step] = []
    for raw in flow.steps:
        if isinstance(raw, ForEachSpec):
            total = len(catalog.dimensions)
            for index, dim in enumerate(catalog.dimensions, start=1):
                steps += [Step(f"{dim.id}.{sub.id}", sub, dim, index, total) for sub in raw.steps]
        else:
            steps.append(Step(raw.id, raw))
    keys = [s.key for s in steps]
    if len(set(keys)) != len(keys):
        raise ContentError(f"{where}: step ids are not unique")
    for step in steps:
        when = step.when
        if when is not None and when not in CONDITIONS and not ANSWER_IS.fullmatch(when):
            raise ContentError(f"{where}: step {step.key!r}: unknown condition {when!r}")
        problem = step.spec.check(step.key, flow, keys)
        if problem:
            raise ContentError(f"{where}: step {step.key!r}: {problem}")
    if not steps[-1].spec.ends_flow:
        raise ContentError(f"{where}: a flow must close with an end step")
    first = next((s for s in steps if not isinstance(s.spec, SettingStep)), None)
    if flow.id == INTAKE_FLOW and (first is None or not isinstance(first.spec, ConsentStep)):
        raise ContentError(f"{where}: the intake must ask consent before any question")
    return steps


def _described(definition: dict[str, Any], exc: ValidationError) -> str:
    """The first error as "step 'x', field 'y': what is wrong" (pydantic's own words)."""
    error = exc.errors()[0]
    node: Any = definition
    step = ""
    for part in error["loc"]:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
            step = f"step {node['id']!r}, " if isinstance(node, dict) and "id" in node else step
        elif isinstance(part, str) and isinstance(node, dict) and isinstance(node.get(part), list | dict):
            node = node[part]
    last = error["loc"][-1] if error["loc"] else None
    field = f"field {last!r}: " if isinstance(last, str) and last not in STEP_TYPES | {"step"} else ""
    return f"{step}{field}{error['msg']}"


def _low_score(engine: FlowEngine, step: Step, answers: dict[str, Any], ctx: FlowContext) -> bool:
    if step.dimension is None:
        return False
    score = answers.get(f"{step.dimension.id}.score")
    return isinstance(score, int) and score <= engine.low_score_threshold


def _unset(engine: FlowEngine, step: Step, answers: dict[str, Any], ctx: FlowContext) -> bool:
    return isinstance(step.spec, SettingStep) and getattr(ctx, step.spec.setting) is None


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


class FlowEngine:
    """Runs one flow. The step types (``bot/flows/steps.py``) decide what their buttons are and
    what a tap or a text does; the engine does what is the same for all: the order of steps and
    their conditions, going back, holds, old buttons and double taps, commands and media."""

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
        # Typed words that answer a yes/no question (messages.yaml ``answer_words``).
        self.answer_words = {
            answer: frozenset(normalise(str(w)) for w in catalog.raw(f"answer_words.{answer}"))
            for answer in ("yes", "no")
        }
        source = str(catalog.content_dir / f"{flow}.yaml")
        self.spec = parse_flow(self.definition, source)
        self.steps = _flatten(catalog, self.spec, source)
        self._by_key = {s.key: s for s in self.steps}
        self._position = {s.key: i for i, s in enumerate(self.steps)}
        self.max_priorities = next(
            (s.spec.max for s in self.steps if isinstance(s.spec, PrioritiesStep)),
            PrioritiesStep.model_fields["max"].default,
        )
        # Message keys for the end of this flow and for input after it (see the flow's YAML).
        self.closing_key = self.spec.closing
        self.done_key = self.spec.done

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
            if isinstance(inp, Choice) and state.last_choice == [inp.seq, inp.value]:
                # The tap that ended the flow, twice: say so quietly.
                return Result(state, [], toast=self.catalog.t("toast.already"))
            if isinstance(inp, Choice):
                return Result(state, self.ask(state, ctx), toast=self.catalog.t("toast.old"))
            return Result(state, self.ask(state, ctx))
        if isinstance(inp, Command):
            if inp.name == "back":
                return self._back(state, ctx)
            return self.reask(state, ctx, "bad.unknown_command")
        if isinstance(inp, Unsupported):
            key = {"voice": "bad.voice", "edited": "bad.edited"}.get(inp.kind, "bad.media")
            return self.reask(state, ctx, key)
        step = self._by_key[state.step]
        if isinstance(inp, Choice):
            if inp.seq != state.seq:
                return self.stale(state, inp, ctx)
            if inp.value == BACK:
                return self._back(state, ctx)
            result = step.spec.on_choice(self, step, state, inp.value, ctx)
            # A button value this step does not know: treat like an old button.
            return result if result is not None else self.stale(state, Choice(state.seq - 1, inp.value), ctx)
        assert isinstance(inp, Text)
        return self._mark_forwarded(step, step.spec.on_text(self, step, state, inp.text, ctx), inp.forwarded)

    @staticmethod
    def _mark_forwarded(step: Step, result: Result, forwarded: bool) -> Result:
        """Keep the list of free-text answers that came as a forwarded message (``FORWARDED``):
        an answer typed again later is the patient's own."""
        saved = any(isinstance(e, SaveAnswer) and e.key == step.key for e in result.effects)
        before: list[str] = list(result.state.answers.get(FORWARDED) or [])
        if not (saved and step.spec.free_text):
            return result
        marked = [k for k in before if k != step.key] + ([step.key] if forwarded else [])
        if marked == before:
            return result
        answers = {**result.state.answers, FORWARDED: marked}
        effect: Effect = SaveAnswer(FORWARDED, marked)
        if not marked:
            answers.pop(FORWARDED)
            effect = DeleteAnswer(FORWARDED)
        state = replace(result.state, answers=answers)
        return replace(result, state=state, effects=[*result.effects, effect])

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

    def takes_free_text(self, state: FlowState) -> bool:
        """Whether the current question is answered in the patient's own words (so a voice
        message can be its answer)."""
        step = None if state.hold else self._by_key.get(state.step)
        return step is not None and step.spec.free_text

    def label(self, step_id: str, answers: dict[str, Any]) -> str:
        """The button label of the answer to a pick/choices step (for summaries)."""
        step = self._by_key[step_id]
        labels = {o.value: o.label for o in self.options(step)}
        value = answers.get(step_id)
        if isinstance(value, list):
            return ", ".join(labels.get(str(v), str(v)) for v in value)
        return labels.get(str(value), str(value))

    # -- what step types use --------------------------------------------------------
    def save(
        self, step: Step, state: FlowState, value: Any, ctx: FlowContext, *, choice: str | None = None
    ) -> Result:
        """Store ``value`` as this step's answer (None: remove it) and go to the next step."""
        answers = dict(state.answers)
        effects: list[Effect] = []
        if value is None:
            if step.key in answers:
                answers.pop(step.key)
                effects.append(DeleteAnswer(step.key))
        else:
            answers[step.key] = value
            effects.append(SaveAnswer(step.key, value))
        return self.advance(state, answers, effects, ctx, choice=choice)

    def advance(
        self,
        state: FlowState,
        answers: dict[str, Any],
        effects: list[Effect],
        ctx: FlowContext,
        *,
        choice: str | None = None,
    ) -> Result:
        """The next step that applies (answers of steps that no longer apply are removed)."""
        current = state.step
        history = [] if self._by_key[current].spec.closes_history else [*state.history, current]
        pos = self._position[current] + 1
        while True:
            step = self.steps[pos]
            if not _applies(self, step, answers, ctx):
                if step.key in answers:
                    answers.pop(step.key)
                    effects.append(DeleteAnswer(step.key))
                pos += 1
                continue
            passed = step.spec.skipped(self, answers)
            if passed is not None:
                answers[step.key] = passed
                effects.append(SaveAnswer(step.key, passed))
                pos += 1
                continue
            break
        new = FlowState(
            step=step.key,
            seq=state.seq + 1,
            answers=answers,
            history=history,
            last_choice=_tap(state, choice),
        )
        if step.spec.ends_flow:
            new.step = DONE
            effects.append(Completed())
            closing = OutMessage(self.catalog.t(self.closing_key, when=ctx.consult_when), private=True)
            return Result(new, [closing], effects, changed=True)
        return Result(new, [self._question(new, ctx)], effects, changed=True)

    def decline(self, state: FlowState, ctx: FlowContext, *, choice: str | None = None) -> Result:
        """Consent refused: no questions; the patient can start again later."""
        new = replace(state, step=DECLINED, seq=state.seq + 1, last_choice=_tap(state, choice))
        return Result(
            new, [OutMessage(self.catalog.t("consent_declined"))], [RecordConsent(False)], changed=True
        )

    def go_back_to(
        self, state: FlowState, key: str, ctx: FlowContext, *, choice: str | None = None, note: str
    ) -> Result:
        """Back to step ``key`` after a note; earlier answers stay as a starting point."""
        position = self._position[key]
        history = [h for h in state.history if self._position[h] < position]
        new = replace(
            state, step=key, seq=state.seq + 1, history=history, draft=[], last_choice=_tap(state, choice)
        )
        return Result(new, self.ask(new, ctx, [self.catalog.t(note)]), changed=True)

    def reask(self, state: FlowState, ctx: FlowContext, key: str, **params: Any) -> Result:
        """The same question again, after the note ``key``."""
        return Result(state, self.ask(state, ctx, [self.catalog.t(key, **params)]))

    def stale(self, state: FlowState, inp: Choice, ctx: FlowContext) -> Result:
        """A tap on an old button (or a value the question does not have)."""
        if state.last_choice == [inp.seq, inp.value]:
            # A double tap: the first tap already moved on. Say so quietly.
            return Result(state, [], toast=self.catalog.t("toast.already"))
        result = self.reask(state, ctx, "bad.old_button")
        result.toast = self.catalog.t("toast.old")
        return result

    def redraw(self, state: FlowState, ctx: FlowContext) -> Result:
        """A multi-select tap: the same question again, edited in place, with a quiet toast."""
        return Result(
            state,
            [replace(self._question(state, ctx), edit=True)],
            changed=True,
            toast=self.catalog.t("toast.saved"),
        )

    def options(self, step: Step) -> list[Button]:
        """The buttons of a step's ``options`` (a list in the flow, or ``themes``)."""
        name = getattr(step.spec, "options", None)
        if name == "themes":
            return [Button(f"{t.emoji} {t.label}", t.id) for t in self.catalog.themes]
        listed = self.spec.options.get(str(name))
        if listed is None:
            raise ContentError(f"step {step.key!r}: unknown options {name!r}")
        return [Button(o.label, o.value) for o in listed]

    def faces(self) -> dict[str, str]:
        """Simple mode: score (as text) -> face, from the flow's ``faces`` list."""
        return {str(f.value): f.label for f in self.spec.faces}

    # -- transitions ----------------------------------------------------------------
    def _held(self, state: FlowState, inp: Input, ctx: FlowContext) -> Result:
        if isinstance(inp, Choice) and inp.seq == state.seq and inp.value == CONTINUE:
            return self.release(state, ctx, tap=[state.seq, CONTINUE])
        if isinstance(inp, Choice) and inp.seq == state.seq and inp.value == WAIT:
            return Result(state, [OutMessage(self.catalog.t("safety.wait"))])
        if isinstance(inp, Choice) and inp.seq != state.seq:
            return self.stale(state, inp, ctx)
        return Result(state, self.ask(state, ctx))

    def _back(self, state: FlowState, ctx: FlowContext) -> Result:
        if not state.history:
            return self.reask(state, ctx, "bad.first_step")
        history = list(state.history)
        key = history.pop()
        step = self._by_key[key]
        draft = list(state.answers.get(key) or []) if step.spec.keeps_draft else []
        new = replace(state, step=key, seq=state.seq + 1, history=history, draft=draft)
        return Result(new, [self._question(new, ctx)], changed=True)

    # -- rendering ------------------------------------------------------------------
    def _question(self, state: FlowState, ctx: FlowContext) -> OutMessage:
        step = self._by_key[state.step]
        spec = step.spec
        params: dict[str, Any] = {
            "dimension": step.dimension,
            "index": step.index,
            "total": step.total,
            "max": self.max_priorities,
            "answers": state.answers,
            "label": lambda step_id: self.label(step_id, state.answers),
        }
        prompt = spec.simple_prompt if ctx.simple_mode and spec.simple_prompt else spec.prompt
        text = spec.text(
            self, step, state, ctx, self.catalog.render_string(prompt, **params) if prompt else ""
        )
        rows = list(spec.rows(self, step, state, ctx))
        if state.history:
            rows.append((Button(self.catalog.t("buttons.back"), BACK),))
        return OutMessage(
            text=text, buttons=tuple(rows), seq=state.seq, private=spec.private, speak=spec.speak
        )


def _tap(state: FlowState, choice: str | None) -> list[Any] | None:
    """The button that moved the flow on (so a double tap on it is recognised)."""
    return [state.seq, choice] if choice is not None else None
