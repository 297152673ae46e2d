"""The consult-preparation intake: a declarative flow from ``content/nl/intake.yaml``.

The engine is pure. It gets the definition and texts at construction and, per call, the
current :class:`IntakeState` and one input; it returns the new state, the messages to show
and the effects to store. It never reads the clock, the network or the database.
"""

from __future__ import annotations

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
    Text,
    Unsupported,
)
from bot.nlp.items import split_items

INTAKE_FLOW = "intake"
DONE = "done"
DECLINED = "declined"

# Button values with a meaning of their own (never a theme or option id).
BACK = "__back"
SKIP = "__skip"
FINISH = "__done"
CONTINUE = "__go"
WAIT = "__wait"

STEP_TYPES = {"consent", "text", "scale", "yesno", "choices", "priorities", "end"}
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
    minimum: int = 0
    maximum: int = 10
    dimension: Dimension | None = None
    index: int = 0
    total: int = 0


@dataclass(frozen=True)
class IntakeContext:
    """Per-conversation facts the texts need (already formatted for the patient)."""

    practice_name: str
    consult_when: str


@dataclass
class IntakeState:
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
    def from_dict(cls, data: dict[str, Any]) -> IntakeState:
        return cls(**data)

    @property
    def finished(self) -> bool:
        return self.step == DONE


def expand_steps(catalog: Catalog) -> list[Step]:
    """Turn the YAML definition into a flat list of concrete steps."""
    steps: list[Step] = []
    for raw in catalog.intake.get("steps", []):
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
    if not steps or steps[0].type != "consent" or steps[-1].type != "end":
        raise ContentError("the intake must start with consent and close with end")
    return steps


def _make_step(raw: dict[str, Any], key: str, dim: Dimension | None, index: int, total: int) -> Step:
    step_type = raw.get("type")
    if step_type not in STEP_TYPES:
        raise ContentError(f"step {key!r}: unknown type {step_type!r}")
    when = raw.get("when")
    if when is not None and when not in CONDITIONS:
        raise ContentError(f"step {key!r}: unknown condition {when!r}")
    return Step(
        key=key,
        id=raw["id"],
        type=step_type,
        prompt=raw.get("prompt", ""),
        optional=bool(raw.get("optional", False)),
        when=when,
        options=raw.get("options"),
        minimum=int(raw.get("min", 0)),
        maximum=int(raw.get("max", 10)),
        dimension=dim,
        index=index,
        total=total,
    )


def _low_score(engine: IntakeEngine, step: Step, answers: dict[str, Any]) -> bool:
    if step.dimension is None:
        return False
    score = answers.get(f"{step.dimension.id}.score")
    return isinstance(score, int) and score <= engine.low_score_threshold


CONDITIONS: dict[str, Callable[[IntakeEngine, Step, dict[str, Any]], bool]] = {
    "low_score": _low_score,
}


def _normalise(text: str) -> str:
    return " ".join(text.casefold().strip().strip(".!?,").split())


def _shorten(label: str) -> str:
    label = " ".join(label.split())
    return label if len(label) <= BUTTON_LABEL_MAX else label[: BUTTON_LABEL_MAX - 1] + "…"


class IntakeEngine:
    def __init__(
        self,
        catalog: Catalog,
        *,
        low_score_threshold: int = 5,
        max_text_chars: int = 2000,
    ) -> None:
        self.catalog = catalog
        self.low_score_threshold = low_score_threshold
        self.max_text_chars = max_text_chars
        self.steps = expand_steps(catalog)
        self._by_key = {s.key: s for s in self.steps}
        self._position = {s.key: i for i, s in enumerate(self.steps)}
        self.max_priorities = int(
            next((s for s in catalog.intake["steps"] if s.get("type") == "priorities"), {}).get("max", 3)
        )

    # -- public API -----------------------------------------------------------------
    def start(self, ctx: IntakeContext, *, after_seq: int = 0) -> Result:
        """A fresh intake. ``after_seq`` keeps question numbers rising across consults, so
        buttons of an earlier conversation never match a new question."""
        state = IntakeState(step=self.steps[0].key, seq=after_seq + 1)
        return Result(state=state, messages=self.ask(state, ctx), changed=True)

    def restart_after_decline(self, state: IntakeState, ctx: IntakeContext) -> Result:
        new = replace(state, step=self.steps[0].key, seq=state.seq + 1, draft=[])
        return Result(state=new, messages=self.ask(new, ctx), changed=True)

    def hold(self, state: IntakeState, ctx: IntakeContext, notes: Iterable[str]) -> Result:
        """Stop the flow after ``notes`` (e.g. where to get help now); go on only when the patient
        taps to continue. Answers stay as they are."""
        new = replace(state, hold=True, seq=state.seq + 1)
        return Result(new, self.ask(new, ctx, notes), changed=True)

    def ask(self, state: IntakeState, ctx: IntakeContext, prefix: Iterable[str] = ()) -> list[OutMessage]:
        """The current question (again), after optional short notes."""
        notes = [OutMessage(text=p) for p in prefix]
        if state.hold:
            b = self.catalog.t
            buttons = ((Button(b("buttons.go_on"), CONTINUE),), (Button(b("buttons.not_now"), WAIT),))
            return [*notes, OutMessage(b("safety.continue"), buttons=buttons, seq=state.seq)]
        if state.step == DONE:
            return [*notes, OutMessage(self.catalog.t("already_done", when=ctx.consult_when))]
        if state.step == DECLINED:
            return [*notes, OutMessage(self.catalog.t("consent_declined"))]
        return [*notes, self._question(state, ctx)]

    def handle(self, state: IntakeState, inp: Input, ctx: IntakeContext) -> Result:
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
    def _held(self, state: IntakeState, inp: Input, ctx: IntakeContext) -> Result:
        if isinstance(inp, Choice) and inp.seq == state.seq and inp.value == CONTINUE:
            new = replace(state, hold=False, seq=state.seq + 1, last_choice=[state.seq, CONTINUE])
            return Result(new, self.ask(new, ctx), changed=True)
        if isinstance(inp, Choice) and inp.seq == state.seq and inp.value == WAIT:
            return Result(state, [OutMessage(self.catalog.t("safety.wait"))])
        if isinstance(inp, Choice) and inp.seq != state.seq:
            return self._stale(state, inp, ctx)
        return Result(state, self.ask(state, ctx))

    def _reask(self, state: IntakeState, ctx: IntakeContext, key: str, **params: Any) -> Result:
        return Result(state, self.ask(state, ctx, [self.catalog.t(key, **params)]))

    def _stale(self, state: IntakeState, inp: Choice, ctx: IntakeContext) -> Result:
        if state.last_choice == [inp.seq, inp.value]:
            # A double tap: the first tap already moved on. Say so quietly.
            return Result(state, [], toast=self.catalog.t("toast.already"))
        result = self._reask(state, ctx, "bad.old_button")
        result.toast = self.catalog.t("toast.old")
        return result

    def _back(self, state: IntakeState, ctx: IntakeContext) -> Result:
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
        state: IntakeState,
        answers: dict[str, Any],
        effects: list[Effect],
        ctx: IntakeContext,
        *,
        choice: str | None = None,
    ) -> Result:
        current = state.step
        history = [*state.history, current] if self._by_key[current].type != "consent" else []
        pos = self._position[current] + 1
        while True:
            step = self.steps[pos]
            if step.when and not CONDITIONS[step.when](self, step, answers):
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
        new = IntakeState(
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
                [OutMessage(self.catalog.t("closing", when=ctx.consult_when))],
                effects,
                changed=True,
            )
        return Result(new, [self._question(new, ctx)], effects, changed=True)

    def _save(
        self,
        step: Step,
        state: IntakeState,
        value: Any,
        ctx: IntakeContext,
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

    def _choice(self, step: Step, state: IntakeState, value: str, ctx: IntakeContext) -> Result:
        if step.type == "consent" and value in ("yes", "no"):
            return self._consent(state, value == "yes", ctx, choice=value)
        if step.type == "text" and value == SKIP and step.optional:
            return self._save(step, state, None, ctx, choice=value)
        if step.type == "scale" and value.isdigit() and step.minimum <= int(value) <= step.maximum:
            return self._save(step, state, int(value), ctx, choice=value)
        if step.type == "yesno" and value in ("yes", "no"):
            return self._save(step, state, value == "yes", ctx, choice=value)
        if step.type == "choices":
            return self._toggle_choice(step, state, value, ctx)
        if step.type == "priorities":
            return self._toggle_priority(step, state, value, ctx)
        # A button value this step does not know: treat like an old button.
        return self._stale(state, Choice(state.seq - 1, value), ctx)

    def _text(self, step: Step, state: IntakeState, text: str, ctx: IntakeContext) -> Result:
        word = _normalise(text)
        if step.type == "text":
            problem = self._check_text(step, text)
            if problem:
                return self._reask(state, ctx, problem, max=self.max_text_chars)
            return self._save(step, state, text.strip(), ctx)
        if step.type == "scale":
            if word.lstrip("-").isdigit():
                number = int(word)
                if step.minimum <= number <= step.maximum:
                    return self._save(step, state, number, ctx)
                return self._reask(state, ctx, "bad.scale_range", min=step.minimum, max=step.maximum)
            return self._reask(state, ctx, "bad.use_buttons")
        if step.type in ("yesno", "consent") and (word in YES_WORDS or word in NO_WORDS):
            yes = word in YES_WORDS
            if step.type == "consent":
                return self._consent(state, yes, ctx)
            return self._save(step, state, yes, ctx)
        return self._reask(state, ctx, "bad.use_buttons")

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
        self, state: IntakeState, given: bool, ctx: IntakeContext, *, choice: str | None = None
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

    def _toggle_choice(self, step: Step, state: IntakeState, value: str, ctx: IntakeContext) -> Result:
        if value == FINISH:
            return self._save(step, state, list(state.draft), ctx, choice=value)
        valid = {option.value for option in self._options(step)}
        if value not in valid:
            return self._stale(state, Choice(state.seq - 1, value), ctx)
        draft = [v for v in state.draft if v != value] if value in state.draft else [*state.draft, value]
        new = replace(state, draft=draft)
        return Result(
            new,
            [replace(self._question(new, ctx), edit=True)],
            changed=True,
            toast=self.catalog.t("toast.saved"),
        )

    def _toggle_priority(self, step: Step, state: IntakeState, value: str, ctx: IntakeContext) -> Result:
        candidates = dict(self.candidates(state.answers))
        if value == FINISH:
            chosen = [{"id": c, "label": candidates[c]} for c in state.draft if c in candidates]
            return self._save(step, state, chosen, ctx, choice=value)
        if value not in candidates:
            return self._stale(state, Choice(state.seq - 1, value), ctx)
        draft = [v for v in state.draft if v != value] if value in state.draft else [*state.draft, value]
        if len(draft) >= min(self.max_priorities, len(candidates)):
            new = replace(state, draft=draft)
            return self._toggle_priority(step, new, FINISH, ctx)
        new = replace(state, draft=draft)
        return Result(
            new,
            [replace(self._question(new, ctx), edit=True)],
            changed=True,
            toast=self.catalog.t("toast.saved"),
        )

    # -- rendering ------------------------------------------------------------------
    def _options(self, step: Step) -> list[Button]:
        if step.options == "themes":
            return [Button(f"{t.emoji} {t.label}", t.id) for t in self.catalog.themes]
        raise ContentError(f"step {step.key!r}: unknown options {step.options!r}")

    def _question(self, state: IntakeState, ctx: IntakeContext) -> OutMessage:
        step = self._by_key[state.step]
        b = self.catalog.t
        params: dict[str, Any] = {
            "dimension": step.dimension,
            "index": step.index,
            "total": step.total,
            "max": self.max_priorities,
        }
        rows: list[tuple[Button, ...]] = []
        text = self.catalog.render_string(step.prompt, **params) if step.prompt else ""
        if step.type == "consent":
            text = b("consent", practice=ctx.practice_name)
            rows = [(Button(b("buttons.consent_yes"), "yes"),), (Button(b("buttons.consent_no"), "no"),)]
        elif step.type == "text":
            if step.optional:
                rows.append((Button(b("buttons.skip"), SKIP),))
        elif step.type == "scale":
            numbers = [Button(str(n), str(n)) for n in range(step.minimum, step.maximum + 1)]
            half = (len(numbers) + 1) // 2
            rows += [tuple(numbers[:half]), tuple(numbers[half:])]
        elif step.type == "yesno":
            rows.append((Button(b("buttons.answer_yes"), "yes"), Button(b("buttons.answer_no"), "no")))
        elif step.type == "choices":
            mark = b("buttons.selected_mark")
            options = [
                Button(f"{mark} {o.label}" if o.value in state.draft else o.label, o.value)
                for o in self._options(step)
            ]
            rows += [tuple(options[i : i + 2]) for i in range(0, len(options), 2)]
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
        return OutMessage(text=text, buttons=tuple(rows), seq=state.seq)
