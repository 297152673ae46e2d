"""Storage: aiosqlite in WAL mode, numbered SQL migrations, a small repository layer."""

from bot.storage.db import Database
from bot.storage.repo import Repository

__all__ = ["Database", "Repository"]
