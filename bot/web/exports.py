"""Exports of one consult: a SOEP block for the HIS, FHIR R4B JSON, and a PDF of the agenda.

SOEP: S in the patient's own words, O the patient-reported scores (marked as such), E left for
the POH, P the goals and actions as the patient may read them in their portal.
FHIR (fhir.resources R4B models validate every resource): the intake as Questionnaire and
QuestionnaireResponse, the plan as Goal and CarePlan, reminders as CommunicationRequest.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from bot.content import Catalog
from bot.flows.engine import FlowEngine, Step
from bot.flows.steps import ScaleStep
from bot.services.agenda import AgendaView
from bot.services.plans import GoalView, describe_schedule

SYSTEM = "https://voorgesprek.nl/fhir"
ITEM_TYPES = {
    "text": "text",
    "scale": "integer",
    "yesno": "boolean",
    "choices": "choice",
    "priorities": "string",
}


def soep(catalog: Catalog, view: AgendaView, goals: list[GoalView]) -> str:
    return catalog.render_template(
        "soep.txt.j2",
        a=view,
        goals=goals,
        when=lambda action: describe_schedule(catalog, action.schedule),
    ).strip()


# -- FHIR ------------------------------------------------------------------------------------
def _items(engine: FlowEngine) -> list[tuple[Step, dict[str, Any]]]:
    out = []
    for step in engine.steps:
        if step.type not in ITEM_TYPES:
            continue
        text = re.sub(r"\{\{.*?\}\}", "", step.prompt).strip().splitlines()
        label = f"{step.dimension.name}: " if step.dimension else ""
        item: dict[str, Any] = {
            "linkId": step.key,
            "text": label + (text[-1] if text else step.key),
            "type": ITEM_TYPES[step.type],
            "required": step.type in ("scale", "yesno"),
        }
        if step.type == "choices":
            item["repeats"] = True
            item["answerOption"] = [
                {"valueCoding": {"system": f"{SYSTEM}/theme", "code": t.id, "display": t.label}}
                for t in engine.catalog.themes
            ]
        if step.type == "priorities":
            item["repeats"] = True
        if isinstance(step.spec, ScaleStep):
            item["extension"] = [
                {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": step.spec.min},
                {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": step.spec.max},
            ]
        out.append((step, item))
    return out


def questionnaire(engine: FlowEngine) -> dict[str, Any]:
    t = engine.catalog.t
    return {
        "resourceType": "Questionnaire",
        "id": "voorgesprek-intake",
        "url": f"{SYSTEM}/Questionnaire/voorgesprek-intake",
        "version": str(engine.definition.get("version", 1)),
        "name": "VoorgesprekIntake",
        "title": t("web.fhir.questionnaire_title"),
        "status": "active",
        "item": [item for _, item in _items(engine)],
    }


def _answers(step: Step, value: Any, catalog: Catalog) -> list[dict[str, Any]]:
    if step.type == "scale" and isinstance(value, int):
        return [{"valueInteger": value}]
    if step.type == "yesno" and isinstance(value, bool):
        return [{"valueBoolean": value}]
    if step.type == "choices" and isinstance(value, list):
        return [
            {"valueCoding": {"system": f"{SYSTEM}/theme", "code": v, "display": catalog.theme(v).label}}
            for v in value
        ]
    if step.type == "priorities" and isinstance(value, list):
        return [{"valueString": str(p["label"])} for p in value]
    if step.type == "text" and isinstance(value, str) and value:
        return [{"valueString": value}]
    return []


def questionnaire_response(
    engine: FlowEngine, answers: dict[str, Any], patient_ref: str, authored: datetime, completed: bool
) -> dict[str, Any]:
    items = []
    for step, item in _items(engine):
        values = _answers(step, answers.get(step.key), engine.catalog)
        if values:
            items.append({"linkId": item["linkId"], "text": item["text"], "answer": values})
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{SYSTEM}/Questionnaire/voorgesprek-intake",
        "status": "completed" if completed else "in-progress",
        "subject": {"reference": patient_ref},
        "authored": authored.isoformat(),
        "source": {"reference": patient_ref},
        "item": items,
    }


def check_response(q: dict[str, Any], qr: dict[str, Any]) -> list[str]:
    """Problems where a QuestionnaireResponse does not match its Questionnaire."""
    by_id = {i["linkId"]: i for i in q["item"]}
    problems = []
    answered = set()
    value_keys = {"integer": "valueInteger", "boolean": "valueBoolean", "choice": "valueCoding"}
    value_keys |= {"text": "valueString", "string": "valueString"}
    for item in qr.get("item", []):
        spec = by_id.get(item["linkId"])
        if spec is None:
            problems.append(f"unknown linkId {item['linkId']}")
            continue
        answered.add(item["linkId"])
        if len(item["answer"]) > 1 and not spec.get("repeats"):
            problems.append(f"{item['linkId']}: several answers to a non-repeating item")
        for answer in item["answer"]:
            if value_keys[spec["type"]] not in answer:
                problems.append(f"{item['linkId']}: answer type does not match {spec['type']}")
    if qr["status"] == "completed":
        problems += [
            f"required {i} not answered" for i, s in by_id.items() if s["required"] and i not in answered
        ]
    return problems


def _timing(action: Any) -> dict[str, Any]:
    schedule = action.schedule
    repeat: dict[str, Any] = {"timeOfDay": [schedule.at.strftime("%H:%M:%S")]}
    if schedule.kind == "once":
        repeat |= {"count": 1}
    elif schedule.kind == "weekdays":
        codes = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        repeat |= {"dayOfWeek": [codes[d] for d in sorted(schedule.weekdays)]}
    else:
        repeat |= {"frequency": 1, "period": schedule.every_days, "periodUnit": "d"}
    bounds = {"start": schedule.start.isoformat()}
    if schedule.end:
        bounds["end"] = schedule.end.isoformat()
    repeat["boundsPeriod"] = bounds
    return {"repeat": repeat}


def plan_resources(catalog: Catalog, goals: list[GoalView], patient_ref: str) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    activities = []
    goal_refs = []
    for goal in goals:
        goal_id = f"goal-{goal.id}"
        resource: dict[str, Any] = {
            "resourceType": "Goal",
            "id": goal_id,
            "lifecycleStatus": "cancelled" if goal.ended else "active",
            "description": {"text": goal.text},
            "subject": {"reference": patient_ref},
        }
        if goal.follow_up_on:
            resource["target"] = [{"dueDate": goal.follow_up_on.isoformat()}]
        if goal.teachback:
            resource["note"] = [{"text": catalog.t("web.fhir.own_words", text=goal.teachback)}]
        resources.append(resource)
        goal_refs.append({"reference": f"Goal/{goal_id}"})
        for action in goal.actions:
            activities.append(
                {
                    "detail": {
                        "status": "stopped" if action.ended else "in-progress",
                        "description": f"{action.what} ({describe_schedule(catalog, action.schedule)})",
                        "goal": [{"reference": f"Goal/{goal_id}"}],
                        "scheduledTiming": _timing(action),
                    }
                }
            )
            resources.append(
                {
                    "resourceType": "CommunicationRequest",
                    "id": f"reminder-{action.id}",
                    "status": "revoked" if action.ended else "active",
                    "subject": {"reference": patient_ref},
                    "recipient": [{"reference": patient_ref}],
                    "payload": [{"contentString": action.what}],
                    "medium": [{"text": "Telegram"}],
                    "occurrencePeriod": _timing(action)["repeat"]["boundsPeriod"],
                }
            )
    if goals:
        resources.append(
            {
                "resourceType": "CarePlan",
                "id": "careplan",
                "status": "active",
                "intent": "plan",
                "title": catalog.t("web.fhir.careplan_title"),
                "subject": {"reference": patient_ref},
                "goal": goal_refs,
                "activity": activities,
            }
        )
    return resources


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r} for r in resources],
    }


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """Validate with the fhir.resources R4B models; returns the JSON they produce."""
    from fhir.resources.R4B.bundle import Bundle

    return Bundle.model_validate(data).model_dump(mode="json", exclude_none=True)


# -- PDF -------------------------------------------------------------------------------------
class PdfFontMissing(RuntimeError):
    """``PDF_FONT`` is not a readable TrueType font: no PDF rather than one with letters missing."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"PDF_FONT {path}: {reason}")
        self.path = path


@dataclass(frozen=True)
class _Font:
    regular: str
    bold: str
    glyphs: frozenset[int]
    bold_glyphs: frozenset[int]


def _register(name: str, path: Path) -> frozenset[int]:
    """Register one TrueType file with ReportLab; returns the code points it has glyphs for."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    try:
        font = TTFont(name, str(path))
    except (TTFError, OSError) as exc:
        raise PdfFontMissing(path, f"not a usable TrueType font ({exc})") from exc
    pdfmetrics.registerFont(font)
    return frozenset(font.face.charToGlyph)


@functools.lru_cache(maxsize=4)
def _font(path: Path) -> _Font:
    """``path`` (and ``<name>-Bold.ttf`` beside it, for the title, if there), registered once."""
    if not path.is_file():
        raise PdfFontMissing(path, "no such file (Debian: apt-get install fonts-dejavu-core)")
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    regular = f"Voorgesprek-{key}"
    glyphs = _register(regular, path)
    bold_path = path.with_name(f"{path.stem}-Bold{path.suffix}")
    if not bold_path.is_file():
        return _Font(regular, regular, glyphs, glyphs)
    bold = f"Voorgesprek-{key}-Bold"
    return _Font(regular, bold, glyphs, _register(bold, bold_path))


def _printable(text: str, glyphs: frozenset[int]) -> str:
    """What the font can draw. Emoji and other signs without a glyph go (as before); a letter or
    digit without one becomes U+FFFD, so a name is never shortened without a trace."""
    out = []
    for ch in text:
        if ord(ch) in glyphs:
            out.append(ch)
        elif unicodedata.category(ch)[0] in "LN":
            out.append("\ufffd" if 0xFFFD in glyphs else "?")
    return "".join(out).strip()


def pdf(title: str, text: str, font_path: Path) -> bytes:
    """The agenda as a PDF in ``font_path`` (``PDF_FONT``, embedded as a subset with its Unicode
    map, so copying and searching the text work). Arabic letters are kept but not shaped:
    ReportLab draws them unjoined, left to right (shaping needs uharfbuzz, direction rlbidi)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    font = _font(font_path)
    styles = getSampleStyleSheet()
    heading = styles["Title"].clone("VoorgesprekTitle", fontName=font.bold)
    body = styles["BodyText"].clone("VoorgesprekBody", fontName=font.regular)
    out = io.BytesIO()
    title = _printable(title, font.bold_glyphs)
    doc = SimpleDocTemplate(out, pagesize=A4, title=title, author="Voorgesprek")
    story: list[Any] = [Paragraph(escape(title, quote=False), heading)]
    for line in text.splitlines():
        clean = escape(_printable(line, font.glyphs), quote=False)
        story.append(Paragraph(clean, body) if clean else Spacer(1, 6))
    doc.build(story)
    return out.getvalue()
