"""The base of every SQLite repository (one aggregate each; the unit of work in ``repo.py`` holds them)."""

from __future__ import annotations

from datetime import datetime

from bot.clock import from_iso
from bot.storage.db import Database


class SqliteRepository:
    def __init__(self, db: Database) -> None:
        self.db = db


def dt_or_none(value: str | None) -> datetime | None:
    return from_iso(value) if value else None
