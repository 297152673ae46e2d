"""Sociale kaart: local help the POH may suggest, matched by theme. Never sent to the patient."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.content import Catalog, ContentError


@dataclass(frozen=True)
class Resource:
    name: str
    description: str
    contact: str
    themes: tuple[str, ...]


class SocialMap:
    def __init__(self, resources: list[Resource]) -> None:
        self.resources = resources

    @classmethod
    def load(cls, path: Path, catalog: Catalog) -> SocialMap:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        known = {t.id for t in catalog.themes}
        resources = []
        for raw in data.get("resources") or []:
            themes = tuple(raw.get("themes") or [])
            unknown = [t for t in themes if t not in known]
            if unknown:
                raise ContentError(f"{path}: {raw.get('name')}: unknown themes {unknown}")
            resources.append(
                Resource(raw["name"], raw.get("description", ""), raw.get("contact", ""), themes)
            )
        return cls(resources)

    def suggest(self, theme_ids: set[str]) -> list[tuple[Resource, list[str]]]:
        """Resources that match any of the themes, best match first, with the themes they match."""
        matches = [(r, [t for t in r.themes if t in theme_ids]) for r in self.resources]
        return sorted(((r, m) for r, m in matches if m), key=lambda rm: -len(rm[1]))
