"""The step types of a flow: one class each, owning its YAML fields, its buttons and what a tap or
typed text does at it.

A flow file (``content/nl/intake.yaml``, ``plan.yaml``) is parsed into :class:`FlowSpec`, whose
steps are a pydantic discriminated union on ``type``: a misspelt field, a missing ``options`` or an
unknown type fails at start-up with the file, the step and the field named.

Adding a step type: a subclass of :class:`StepSpec` with ``type: Literal["..."]``, its own fields,
and the hooks it needs (:meth:`~StepSpec.rows`, :meth:`~StepSpec.on_choice`,
:meth:`~StepSpec.on_text`, :meth:`~StepSpec.check`); add it to :data:`AnyStep`; a test. The engine
(``bot/flows/engine.py``) never looks at the type itself. Texts come from the catalog; no Dutch
words here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from bot.flows.model import Button, RecordConsent, Result, SaveAnswer, SetPreference
from bot.numbers import parse_time, whole_number

if TYPE_CHECKING:
    from bot.flows.engine import FlowContext, FlowEngine, FlowState, Step

Rows = list[tuple[Button, ...]]

# Button values with a meaning of their own (never a theme or option id).
BACK = "__back"
SKIP = "__skip"
FINISH = "__done"
CONTINUE = "__go"
WAIT = "__wait"

BUTTON_LABEL_MAX = 40


def normalise(text: str) -> str:
    return " ".join(text.casefold().strip().strip(".!?,").split())


def shorten(label: str) -> str:
    label = " ".join(label.split())
    return label if len(label) <= BUTTON_LABEL_MAX else label[: BUTTON_LABEL_MAX - 1] + "…"


def toggled(draft: list[str], value: str) -> list[str]:
    return [v for v in draft if v != value] if value in draft else [*draft, value]


def in_rows(buttons: list[Button], per_row: int) -> Rows:
    return [tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OptionSpec(_Spec):
    label: str
    value: str


class FaceSpec(_Spec):
    value: int
    label: str


class StepSpec(_Spec):
    """What every step has. Subclasses add their fields and override the hooks they need."""

    id: str
    prompt: str = ""
    simple_prompt: str = ""  # the prompt in simple mode (one short sentence)
    speak: bool = False  # always read aloud (the question whether to read aloud)
    when: str | None = None  # a condition (see engine.CONDITIONS) or ``answer == value``

    private: ClassVar[bool] = False  # the question shows the patient's own words
    keeps_draft: ClassVar[bool] = False  # going back to it restores the earlier selection
    closes_history: ClassVar[bool] = False  # no way back past it (consent)
    ends_flow: ClassVar[bool] = False  # the flow is done when it is reached
    free_text: ClassVar[bool] = False  # answered in the patient's own words (voice too)

    @property
    def kind(self) -> str:
        return str(self.__dict__["type"])  # every subclass declares its own Literal ``type``

    def check(self, key: str, flow: FlowSpec, keys: list[str]) -> str | None:
        """A problem with this step in this flow (a name that points nowhere), or None."""
        return "'when: unset' is for setting steps only" if self.when == "unset" else None

    def skipped(self, engine: FlowEngine, answers: dict[str, Any]) -> list[Any] | None:
        """A value to store instead of asking (the step is passed by), or None to ask."""
        return None

    def text(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext, prompt: str) -> str:
        return prompt

    def rows(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext) -> Rows:
        return []

    def on_choice(
        self, engine: FlowEngine, step: Step, state: FlowState, value: str, ctx: FlowContext
    ) -> Result | None:
        """A tap on one of this question's buttons; None when the value is not one of them."""
        return None

    def on_text(
        self, engine: FlowEngine, step: Step, state: FlowState, text: str, ctx: FlowContext
    ) -> Result:
        return engine.reask(state, ctx, "bad.use_buttons")


class _YesNo(StepSpec):
    """A question answered with yes or no: the two buttons, or a typed "ja" / "nee"."""

    def decide(
        self,
        engine: FlowEngine,
        step: Step,
        state: FlowState,
        yes: bool,
        ctx: FlowContext,
        choice: str | None,
    ) -> Result:
        return engine.save(step, state, yes, ctx, choice=choice)

    def on_choice(
        self, engine: FlowEngine, step: Step, state: FlowState, value: str, ctx: FlowContext
    ) -> Result | None:
        if value not in ("yes", "no"):
            return None
        return self.decide(engine, step, state, value == "yes", ctx, value)

    def on_text(
        self, engine: FlowEngine, step: Step, state: FlowState, text: str, ctx: FlowContext
    ) -> Result:
        word = normalise(text)
        yes, no = engine.answer_words["yes"], engine.answer_words["no"]
        if word in yes or word in no:
            return self.decide(engine, step, state, word in yes, ctx, None)
        return engine.reask(state, ctx, "bad.use_buttons")


class SettingStep(_YesNo):
    """A preference (read aloud, simple mode), stored with the patient and used from the next
    message. Usually ``when: unset``: asked only until the patient has chosen."""

    type: Literal["setting"]
    setting: Literal["read_aloud", "simple_mode"]
    options: str

    def check(self, key: str, flow: FlowSpec, keys: list[str]) -> str | None:
        return None if self.options in flow.options else f"unknown options {self.options!r}"  # unset: fine

    def decide(
        self,
        engine: FlowEngine,
        step: Step,
        state: FlowState,
        yes: bool,
        ctx: FlowContext,
        choice: str | None,
    ) -> Result:
        changes: dict[str, Any] = {self.setting: yes}
        new_ctx = replace(ctx, **changes)
        effects = [SetPreference(self.setting, yes)]
        return engine.advance(state, dict(state.answers), list(effects), new_ctx, choice=choice)

    def rows(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext) -> Rows:
        return in_rows(engine.options(step), 1)


class ConsentStep(_YesNo):
    """Consent; without a yes no question is asked. There is no way back past it."""

    type: Literal["consent"]
    closes_history: ClassVar[bool] = True

    def decide(
        self,
        engine: FlowEngine,
        step: Step,
        state: FlowState,
        yes: bool,
        ctx: FlowContext,
        choice: str | None,
    ) -> Result:
        if yes:
            return engine.advance(state, dict(state.answers), [RecordConsent(True)], ctx, choice=choice)
        return engine.decline(state, ctx, choice=choice)

    def text(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext, prompt: str) -> str:
        return engine.catalog.t("consent", practice=ctx.practice_name)

    def rows(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext) -> Rows:
        t = engine.catalog.t
        return [(Button(t("buttons.consent_yes"), "yes"),), (Button(t("buttons.consent_no"), "no"),)]


class YesNoStep(_YesNo):
    type: Literal["yesno"]

    def rows(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext) -> Rows:
        t = engine.catalog.t
        yes, no = Button(t("buttons.answer_yes"), "yes"), Button(t("buttons.answer_no"), "no")
        return [(yes,), (no,)] if ctx.simple_mode else [(yes, no)]


class ConfirmStep(_YesNo):
    """The patient's plan read back: yes stores it, no goes back to ``again`` (answers kept)."""

    type: Literal["confirm"]
    again: str
    private: ClassVar[bool] = True

    def check(self, key: str, flow: FlowSpec, keys: list[str]) -> str | None:
        return None if self.again in keys else f"'again' must name a step, not {self.again!r}"

    def decide(
        self,
        engine: FlowEngine,
        step: Step,
        state: FlowState,
        yes: bool,
        ctx: FlowContext,
        choice: str | None,
    ) -> Result:
        if yes:
            return engine.save(step, state, True, ctx, choice=choice)
        return engine.go_back_to(state, self.again, ctx, choice=choice, note="plan.again")

    def rows(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext) -> Rows:
        t = engine.catalog.t
        return [(Button(t("buttons.plan_yes"), "yes"),), (Button(t("buttons.plan_again"), "no"),)]


class TextStep(StepSpec):
    """Free text in the patient's own words; ``optional: true`` adds a skip button."""

    type: Literal["text"]
    optional: bool = False
    free_text: ClassVar[bool] = True

    def rows(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext) -> Rows:
        return [(Button(engine.catalog.t("buttons.skip"), SKIP),)] if self.optional else []

    def on_choice(
        self, engine: FlowEngine, step: Step, state: FlowState, value: str, ctx: FlowContext
    ) -> Result | None:
        return engine.save(step, state, None, ctx, choice=value) if value == SKIP and self.optional else None

    def on_text(
        self, engine: FlowEngine, step: Step, state: FlowState, text: str, ctx: FlowContext
    ) -> Result:
        problem = self.problem(text, engine.max_text_chars)
        if problem:
            return engine.reask(state, ctx, problem, max=engine.max_text_chars)
        return engine.save(step, state, text.strip(), ctx)

    def problem(self, text: str, max_chars: int) -> str | None:
        stripped = text.strip()
        if not stripped:
            return "bad.text_empty" if self.optional else "bad.text_required"
        if len(stripped) > max_chars:
            return "bad.text_too_long"
        if not any(ch.isalnum() for ch in stripped):
            return "bad.text_unclear"
        return None


class ScaleStep(StepSpec):
    """A score with number buttons (``min``..``max``); in simple mode the flow's faces."""

    type: Literal["scale"]
    min: int = 0
    max: int = 10

    def rows(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext) -> Rows:
        faces = engine.faces()
        if ctx.simple_mode and faces:
            return [(Button(face, value),) for value, face in faces.items()]
        numbers = [Button(str(n), str(n)) for n in range(self.min, self.max + 1)]
        half = (len(numbers) + 1) // 2
        return [tuple(numbers[:half]), tuple(numbers[half:])]

    def on_choice(
        self, engine: FlowEngine, step: Step, state: FlowState, value: str, ctx: FlowContext
    ) -> Result | None:
        tapped = whole_number(value)
        if tapped is None or not self.min <= tapped <= self.max:
            return None
        result = engine.save(step, state, tapped, ctx, choice=value)
        face = engine.faces().get(value) if ctx.simple_mode else None
        if face:  # simple mode: keep which face was tapped, next to the score it stands for
            result.effects.append(SaveAnswer(f"{step.key}_face", face))
        return result

    def on_text(
        self, engine: FlowEngine, step: Step, state: FlowState, text: str, ctx: FlowContext
    ) -> Result:
        number = whole_number(normalise(text))
        if number is None:
            return engine.reask(state, ctx, "bad.use_buttons")
        if not self.min <= number <= self.max:
            return engine.reask(state, ctx, "bad.scale_range", min=self.min, max=self.max)
        return engine.save(step, state, number, ctx)


class PickStep(StepSpec):
    """One option from the flow's ``options`` list: a tap, or its label or value typed."""

    type: Literal["pick"]
    options: str
    per_row: ClassVar[int] = 1

    def check(self, key: str, flow: FlowSpec, keys: list[str]) -> str | None:
        return None if self.options in flow.options else f"unknown options {self.options!r}"

    def rows(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext) -> Rows:
        return in_rows(engine.options(step), self.per_row)

    def on_choice(
        self, engine: FlowEngine, step: Step, state: FlowState, value: str, ctx: FlowContext
    ) -> Result | None:
        if value not in {o.value for o in engine.options(step)}:
            return None
        return engine.save(step, state, value, ctx, choice=value)

    def typed(self, engine: FlowEngine, step: Step, text: str) -> str | None:
        word = normalise(text)
        return next(
            (o.value for o in engine.options(step) if word in (normalise(o.label), normalise(o.value))), None
        )

    def on_text(
        self, engine: FlowEngine, step: Step, state: FlowState, text: str, ctx: FlowContext
    ) -> Result:
        value = self.typed(engine, step, text)
        if value is None:
            return engine.reask(state, ctx, "bad.use_buttons")
        return engine.save(step, state, value, ctx)


class TimeStep(PickStep):
    """A time of day: a button, or typed (``9``, ``9 uur``, ``9:30``, ``09.30``)."""

    type: Literal["time"]  # type: ignore[assignment]
    per_row: ClassVar[int] = 3

    def on_text(
        self, engine: FlowEngine, step: Step, state: FlowState, text: str, ctx: FlowContext
    ) -> Result:
        value = self.typed(engine, step, text) or parse_time(text)
        if value is None:
            return engine.reask(state, ctx, "bad.time")
        return engine.save(step, state, value, ctx)


class ChoicesStep(StepSpec):
    """Several options ticked (each tap edits the question in place), then Done; at least ``min``.
    ``options: themes`` lists the catalog's themes."""

    type: Literal["choices"]
    options: str
    min: int = 0
    keeps_draft: ClassVar[bool] = True

    def check(self, key: str, flow: FlowSpec, keys: list[str]) -> str | None:
        known = self.options == "themes" or self.options in flow.options
        return None if known else f"unknown options {self.options!r}"

    def rows(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext) -> Rows:
        mark = engine.catalog.t("buttons.selected_mark")
        options = [
            Button(f"{mark} {o.label}" if o.value in state.draft else o.label, o.value)
            for o in engine.options(step)
        ]
        return [
            *in_rows(options, 1 if ctx.simple_mode else 2),
            (Button(engine.catalog.t("buttons.done"), FINISH),),
        ]

    def on_choice(
        self, engine: FlowEngine, step: Step, state: FlowState, value: str, ctx: FlowContext
    ) -> Result | None:
        if value == FINISH:
            if len(state.draft) < self.min:
                return engine.reask(state, ctx, "bad.choose_at_least")
            return engine.save(step, state, list(state.draft), ctx, choice=value)
        if value not in {option.value for option in engine.options(step)}:
            return None
        return engine.redraw(replace(state, draft=toggled(state.draft, value)), ctx)


class PrioritiesStep(StepSpec):
    """At most ``max`` of everything the patient marked or wrote, in order of tapping. Passed by
    (an empty list) when there is nothing to choose from."""

    type: Literal["priorities"]
    max: int = Field(default=3, ge=1)
    private: ClassVar[bool] = True

    def skipped(self, engine: FlowEngine, answers: dict[str, Any]) -> list[Any] | None:
        return None if engine.candidates(answers) else []

    def text(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext, prompt: str) -> str:
        if not state.draft:
            return prompt
        labels = dict(engine.candidates(state.answers))
        chosen = "\n".join(f"{i}. {labels[c]}" for i, c in enumerate(state.draft, 1) if c in labels)
        return f"{prompt}\n\n{engine.catalog.t('chosen_so_far')}\n{chosen}"

    def rows(self, engine: FlowEngine, step: Step, state: FlowState, ctx: FlowContext) -> Rows:
        rows: Rows = []
        for cid, label in engine.candidates(state.answers):
            rank = state.draft.index(cid) + 1 if cid in state.draft else None
            rows.append((Button(f"{rank}. {shorten(label)}" if rank else shorten(label), cid),))
        return [*rows, (Button(engine.catalog.t("buttons.done"), FINISH),)]

    def on_choice(
        self, engine: FlowEngine, step: Step, state: FlowState, value: str, ctx: FlowContext
    ) -> Result | None:
        candidates = dict(engine.candidates(state.answers))
        if value == FINISH:
            chosen = [{"id": c, "label": candidates[c]} for c in state.draft if c in candidates]
            return engine.save(step, state, chosen, ctx, choice=value)
        if value not in candidates:
            return None
        new = replace(state, draft=toggled(state.draft, value))
        if len(new.draft) >= min(self.max, len(candidates)):  # the last one: done, this tap remembered
            chosen = [{"id": c, "label": candidates[c]} for c in new.draft if c in candidates]
            return engine.save(step, new, chosen, ctx, choice=value)
        return engine.redraw(new, ctx)


class EndStep(StepSpec):
    """The close of a flow: the flow's closing text, and the conversation is done."""

    type: Literal["end"]
    ends_flow: ClassVar[bool] = True


AnyStep = Annotated[
    SettingStep
    | ConsentStep
    | TextStep
    | ScaleStep
    | YesNoStep
    | ChoicesStep
    | PrioritiesStep
    | PickStep
    | TimeStep
    | ConfirmStep
    | EndStep,
    Field(discriminator="type"),
]


class ForEachSpec(_Spec):
    """``for_each: dimension``: the inner steps once per Positive Health dimension."""

    for_each: Literal["dimension"]
    steps: list[AnyStep] = Field(min_length=1)


def _entry(raw: Any) -> str:
    return (
        "for_each"
        if isinstance(raw, ForEachSpec) or (isinstance(raw, dict) and "for_each" in raw)
        else "step"
    )


FlowEntry = Annotated[
    Annotated[AnyStep, Tag("step")] | Annotated[ForEachSpec, Tag("for_each")], Discriminator(_entry)
]
STEP_CLASSES: tuple[type[StepSpec], ...] = get_args(get_args(AnyStep)[0])
STEP_TYPES = frozenset(get_args(cls.model_fields["type"].annotation)[0] for cls in STEP_CLASSES)


class FlowSpec(_Spec):
    id: str
    version: int = 1
    closing: str = "closing"  # message key at the end of the flow
    done: str = "already_done"  # message key for input after it
    options: dict[str, list[OptionSpec]] = Field(default_factory=dict)
    faces: list[FaceSpec] = Field(default_factory=list)
    steps: list[FlowEntry] = Field(min_length=1)
