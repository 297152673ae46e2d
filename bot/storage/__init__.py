"""Storage: aiosqlite in WAL mode, numbered SQL migrations, one repository per aggregate behind the
Protocols in ``ports.py``, held by a unit of work (``SqliteStore``)."""

from bot.storage.db import Database
from bot.storage.ports import UnitOfWork
from bot.storage.store import SqliteStore

__all__ = ["Database", "SqliteStore", "UnitOfWork"]
