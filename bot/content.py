"""Loading of everything in ``content/nl/``: messages, the intake definition, templates.

All Dutch text lives in the content folder. This module reads it once (at start-up, in the
composition root) and hands out a :class:`Catalog` that renders strings without further I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from bot.commands import Commands, CommandsError


def _default_content_dir() -> Path:
    """The content shipped in the wheel (``bot/_content/nl``, see setup.py), else the checkout's
    ``content/nl`` (a checkout or an editable install). ``CONTENT_DIR`` overrides both."""
    packaged = resources.files("bot") / "_content" / "nl"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "content" / "nl"


DEFAULT_CONTENT_DIR = _default_content_dir()


class ContentError(ValueError):
    """The content folder is incomplete or malformed."""


@dataclass(frozen=True)
class Dimension:
    id: str
    name: str
    emoji: str
    explanation: str


@dataclass(frozen=True)
class Theme:
    id: str
    label: str
    emoji: str


def _load_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError as exc:
        raise ContentError(f"missing content file: {path}") from exc


class Catalog:
    """Rendered access to the Dutch texts. Pure after construction."""

    def __init__(self, content_dir: Path = DEFAULT_CONTENT_DIR) -> None:
        self.content_dir = content_dir
        self.messages: dict[str, Any] = {}
        # top-level message key -> the file it comes from (messages.yaml, messages/<part>.yaml)
        self.message_files: dict[str, str] = {}
        self._load_messages()
        self._flows: dict[str, dict[str, Any]] = {}
        self.dimensions: tuple[Dimension, ...] = tuple(
            Dimension(**d) for d in _load_yaml(content_dir / "dimensions.yaml")["dimensions"]
        )
        self.themes: tuple[Theme, ...] = tuple(
            Theme(**t) for t in _load_yaml(content_dir / "themes.yaml")["themes"]
        )
        try:
            self.commands = Commands.from_yaml(_load_yaml(content_dir / "commands.yaml"))
        except CommandsError as exc:
            raise ContentError(str(exc)) from None
        self.templates = Environment(
            loader=FileSystemLoader(str(content_dir / "templates")),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # The clinician web app: HTML, so every value is escaped.
        self.web_templates = Environment(
            loader=FileSystemLoader(str(content_dir / "templates" / "web")),
            undefined=StrictUndefined,
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._string_env = Environment(undefined=StrictUndefined, autoescape=False)
        self._compiled: dict[str, Template] = {}

    def _load_messages(self) -> None:
        """``messages.yaml`` plus every ``messages/*.yaml``: one part per feature, so features
        do not all edit one file. A top-level key lives in one file only."""
        folder = self.content_dir / "messages"
        parts = [self.content_dir / "messages.yaml", *sorted(folder.glob("*.yaml"))]
        for path in parts:
            data = _load_yaml(path) or {}
            if not isinstance(data, dict):
                raise ContentError(f"{path}: expected a mapping of message keys")
            name = path.relative_to(self.content_dir).as_posix()
            for key, value in data.items():
                if key in self.messages:
                    raise ContentError(f"{name}: key {key!r} is also in {self.message_files[key]}")
                self.messages[key] = value
                self.message_files[key] = name

    @property
    def flow_names(self) -> tuple[str, ...]:
        """Every conversation definition: the top-level ``*.yaml`` files that have ``steps``."""
        names = []
        for path in sorted(self.content_dir.glob("*.yaml")):
            data = self.flow(path.stem) if path.stem in self._flows else _load_yaml(path)
            if isinstance(data, dict) and isinstance(data.get("steps"), list):
                names.append(path.stem)
        return tuple(names)

    def flow(self, name: str) -> dict[str, Any]:
        """A conversation definition, ``content/nl/<name>.yaml`` (see ``flow_names``)."""
        if name not in self._flows:
            self._flows[name] = _load_yaml(self.content_dir / f"{name}.yaml")
        return self._flows[name]

    @property
    def intake(self) -> dict[str, Any]:
        return self.flow("intake")

    # -- lookup -------------------------------------------------------------------------
    def raw(self, key: str) -> Any:
        """The raw value at a dotted key, e.g. ``bad.use_buttons``."""
        node: Any = self.messages
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ContentError(f"no message with key {key!r}")
            node = node[part]
        return node

    def render_string(self, source: str, **params: Any) -> str:
        template = self._compiled.get(source)
        if template is None:
            template = self._string_env.from_string(source)
            self._compiled[source] = template
        return template.render(**params).strip()

    def t(self, key: str, **params: Any) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise ContentError(f"message {key!r} is not a string")
        return self.render_string(value, **params)

    def render_page(self, name: str, **params: Any) -> str:
        return self.web_templates.get_template(name).render(t=self.t, **params)

    def render_template(self, name: str, **params: Any) -> str:
        return self.templates.get_template(name).render(**params).strip() + "\n"

    # -- helpers ------------------------------------------------------------------------
    def dimension(self, dim_id: str) -> Dimension:
        for dim in self.dimensions:
            if dim.id == dim_id:
                return dim
        raise ContentError(f"unknown dimension {dim_id!r}")

    def theme(self, theme_id: str) -> Theme:
        for theme in self.themes:
            if theme.id == theme_id:
                return theme
        raise ContentError(f"unknown theme {theme_id!r}")

    def consent_version(self) -> str:
        """A stable version id of the consent text: recorded with every consent."""
        digest = hashlib.sha256(str(self.raw("consent")).encode("utf-8")).hexdigest()
        return f"consent-{digest[:12]}"

    def format_when(self, moment: datetime, style: str = "long") -> str:
        """``dinsdag 1 december om 14:30`` for a local (zone-aware or naive) datetime."""
        key = "date_long" if style == "long" else "date_short"
        return self.t(
            key,
            weekday=self.raw("weekdays")[moment.weekday()],
            day=moment.day,
            month=self.raw("months")[moment.month - 1],
            time=moment.strftime("%H:%M"),
        )
