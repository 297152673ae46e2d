"""``python -m bot backup`` and ``restore``: consistent copies of the live database, optionally
encrypted, and a restore that checks a backup before it replaces anything.

A backup uses SQLite's online backup API in one step: it copies one consistent snapshot while the
bot and the web app keep writing (in WAL mode they do not wait for it). The copy is checked
(``PRAGMA integrity_check``) and made a single self-contained file before it leaves the
database's own folder; an encrypted backup is never written in plain text outside that folder.

Encrypted file format (all integers big-endian)::

    b"VGBACKUP" | version 1 | log2(N) | r | p | salt (16) | nonce prefix (8) | chunk size (4)
    | key check (16) | chunk 0 | chunk 1 | ...

The key is scrypt(passphrase, salt, N, r, p), 32 bytes, for AES-256-GCM. Each chunk is the
AES-GCM encryption of ``chunk size`` bytes of the SQLite file (the last one shorter) with the
nonce ``prefix | chunk number (4)`` and as associated data the header (up to the key check) plus
one byte: 1 for the last chunk, else 0 (the STREAM construction: chunks cannot be reordered,
dropped or cut off unnoticed). The key check is the GCM tag of an empty message under the nonce
``prefix | ffffffff`` with the header as associated data, so a wrong passphrase is told apart
from a damaged file. A backup without a passphrase is a plain SQLite file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bot.storage.db import known_migrations
from bot.storage.filelock import DatabaseInUse, take_exclusive

MAGIC = b"VGBACKUP"
SQLITE_MAGIC = b"SQLite format 3\x00"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">8sBBBB16s8sI")  # magic, version, log2 N, r, p, salt, nonce prefix, chunk
CHECK_COUNTER = 0xFFFFFFFF
TAG = 16
CHUNK = 1 << 20
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 15, 8, 1  # 32 MiB and about 0.1 s per derivation
MIN_PASSPHRASE = 12


class BackupError(Exception):
    """What went wrong, in words for the person at the terminal (no traceback needed)."""


class WrongPassphrase(BackupError):
    pass


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    encrypted: bool
    size: int
    schema: int


@dataclass(frozen=True)
class RestoreInfo:
    database: Path
    schema: int
    pending: list[int]  # migrations the bot applies at its next start (an older backup)
    kept_aside: Path | None


# -- encryption ------------------------------------------------------------------------------
def _key(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> AESGCM:
    kdf = Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p)
    return AESGCM(kdf.derive(passphrase.encode("utf-8")))


def _nonce(prefix: bytes, counter: int) -> bytes:
    return prefix + counter.to_bytes(4, "big")


def encrypt_stream(source: BinaryIO, target: BinaryIO, passphrase: str, chunk: int = CHUNK) -> None:
    salt, prefix = secrets.token_bytes(16), secrets.token_bytes(8)
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, salt, prefix, chunk)
    aead = _key(passphrase, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    target.write(header + aead.encrypt(_nonce(prefix, CHECK_COUNTER), b"", header))
    counter = 0
    current = source.read(chunk)
    while True:
        following = source.read(chunk)
        last = not following
        if counter >= CHECK_COUNTER:
            raise BackupError("the database is too large for this backup format")
        target.write(aead.encrypt(_nonce(prefix, counter), current, header + bytes([last])))
        if last:
            return
        current, counter = following, counter + 1


def decrypt_stream(source: BinaryIO, target: BinaryIO, passphrase: str) -> None:
    header = source.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise BackupError("the backup is damaged: its header is cut off")
    magic, version, log2_n, r, p, salt, prefix, chunk = _HEADER.unpack(header)
    if magic != MAGIC:
        raise BackupError("this is not an encrypted Voorgesprek backup")
    if version != FORMAT_VERSION:
        raise BackupError(f"this backup has format {version}; this version of the bot reads format 1")
    # Bounds, so a damaged or hostile header cannot ask for gigabytes of memory.
    if not (10 <= log2_n <= 20 and 1 <= r <= 16 and 1 <= p <= 4 and 1024 <= chunk <= 1 << 24):
        raise BackupError("the backup is damaged: its header is not valid")
    aead = _key(passphrase, salt, log2_n, r, p)
    try:
        aead.decrypt(_nonce(prefix, CHECK_COUNTER), source.read(TAG), header)
    except InvalidTag:
        raise WrongPassphrase("wrong passphrase (or the backup's header is damaged)") from None
    counter = 0
    current = source.read(chunk + TAG)
    while True:
        following = source.read(chunk + TAG)
        last = not following
        try:
            target.write(aead.decrypt(_nonce(prefix, counter), current, header + bytes([last])))
        except InvalidTag:
            where = _HEADER.size + TAG + counter * (chunk + TAG)
            raise BackupError(f"the backup is damaged or cut off (near byte {where})") from None
        if last:
            return
        current, counter = following, counter + 1


def kind_of(path: Path) -> str:
    """``encrypted``, ``sqlite`` or ``unknown``, from the first bytes."""
    with path.open("rb") as fh:
        start = fh.read(len(SQLITE_MAGIC))
    if start.startswith(MAGIC):
        return "encrypted"
    if start == SQLITE_MAGIC:
        return "sqlite"
    return "unknown"


# -- checks ------------------------------------------------------------------------------------
def check_copy(path: Path) -> list[int]:
    """``integrity_check`` and the migrations applied to a copy; a self-contained file afterwards."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                raise BackupError(f"the backup is damaged: integrity check says {'; '.join(result[:3])}")
            table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            ).fetchone()
            if table is None:
                raise BackupError(
                    "this is a SQLite file, but not a Voorgesprek database (no schema_migrations)"
                )
            versions = [int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations")]
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the backup is damaged: {exc}") from None
    known = known_migrations()
    if not versions:
        raise BackupError("the backup holds no migrations: not a Voorgesprek database")
    unknown = sorted(set(versions) - set(known))
    if unknown:
        raise BackupError(
            f"the backup has migration {unknown[-1]}, newer than this version of the bot knows "
            f"({max(known)}); restore it with the version that made it"
        )
    return sorted(versions)


# -- files -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _scratch(folder: Path, prefix: str) -> Iterator[Path]:
    """A private temporary file in ``folder`` (the database's own folder), always removed."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".sqlite3", dir=folder)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(target: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write to ``target.part`` (mode 0600), fsync, then rename over ``target``."""
    part = target.with_name(target.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
        raise
    _fsync_dir(target.parent)


def _copy(source: Path) -> Callable[[BinaryIO], None]:
    def write(target: BinaryIO) -> None:
        with source.open("rb") as fh:
            while block := fh.read(CHUNK):
                target.write(block)

    return write


# -- backup and restore --------------------------------------------------------------------------
def backup(database: Path, target: Path, passphrase: str | None, *, overwrite: bool = False) -> BackupInfo:
    """A consistent copy of ``database`` while it is in use, checked, then (encrypted) to ``target``."""
    if not database.exists():
        raise BackupError(f"there is no database at {database}")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} already exists (give --overwrite to replace it)")
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    if target.resolve() == database.resolve():
        raise BackupError("the backup cannot be the database itself")
    if passphrase is not None and len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"the passphrase is too short: use at least {MIN_PASSPHRASE} characters")
    with _scratch(database.parent, ".backup-") as copy:
        # A normal connection (read-only mode would leave WAL files behind when it is the last
        # one), told to write nothing.
        source = sqlite3.connect(database, timeout=30.0)
        try:
            source.execute("PRAGMA query_only=ON")
            destination = sqlite3.connect(copy)
            try:
                # One step (pages=-1): one read transaction, so one consistent snapshot; in WAL mode
                # the bot's writers carry on meanwhile.
                source.backup(destination)
            finally:
                destination.close()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"could not read the database: {exc}") from None
        finally:
            source.close()
        schema = max(check_copy(copy))
        if passphrase is None:
            _write_atomically(target, _copy(copy))
        else:

            def encrypt(fh: BinaryIO) -> None:
                with copy.open("rb") as plain:
                    encrypt_stream(plain, fh, passphrase)

            _write_atomically(target, encrypt)
    return BackupInfo(target, passphrase is not None, target.stat().st_size, schema)


def _aside_name(database: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = database.with_name(f"{database.name}.before-restore-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = database.with_name(f"{database.name}.before-restore-{stamp}-{n}")
    return candidate


_SIDE_FILES = ("-wal", "-shm", "-journal")


def _move_aside(database: Path) -> Path | None:
    """Fold the old database's WAL into it (best effort), then rename it with its WAL and journal
    files: renamed together, the kept copy still opens with its last commits, and no old WAL is
    ever applied to the restored file. None when there was nothing to move."""
    present = [s for s in ("", *_SIDE_FILES) if Path(f"{database}{s}").exists()]
    if not present:
        return None
    if database.exists():
        with contextlib.suppress(sqlite3.DatabaseError):
            conn = sqlite3.connect(database, timeout=5.0)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
    aside = _aside_name(database)
    for suffix in ("", *_SIDE_FILES):
        if Path(f"{database}{suffix}").exists():
            os.replace(f"{database}{suffix}", f"{aside}{suffix}")
    return aside


def _move_back(aside: Path, database: Path) -> None:
    for suffix in ("", *_SIDE_FILES):
        if Path(f"{aside}{suffix}").exists():
            os.replace(f"{aside}{suffix}", f"{database}{suffix}")


def restore(backup_file: Path, database: Path, passphrase: Callable[[], str | None]) -> RestoreInfo:
    """Replace ``database`` by ``backup_file``: only when no process has the database open, only
    after the backup checked out, and the old file is kept next to it (``.before-restore-<time>``)."""
    if not backup_file.is_file():
        raise BackupError(f"there is no backup file at {backup_file}")
    try:
        held = take_exclusive(database)
    except DatabaseInUse as exc:
        raise BackupError(f"refusing to restore: {exc}") from None
    try:
        kind = kind_of(backup_file)
        if kind == "unknown":
            raise BackupError(f"{backup_file} is not a Voorgesprek backup (neither SQLite nor encrypted)")
        with _scratch(database.parent, ".restore-") as copy:
            if kind == "encrypted":
                secret = passphrase()
                if not secret:
                    raise BackupError("this backup is encrypted: give its passphrase (--passphrase-env NAME)")
                with backup_file.open("rb") as fh, copy.open("wb") as out:
                    decrypt_stream(fh, out, secret)
            else:
                with copy.open("wb") as out:
                    _copy(backup_file)(out)
            applied = check_copy(copy)
            with copy.open("rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(copy, 0o600)
            aside = _move_aside(database)
            try:
                os.replace(copy, database)
            except BaseException:
                if aside is not None:
                    _move_back(aside, database)
                raise
            _fsync_dir(database.parent)
        pending = sorted(set(known_migrations()) - set(applied))
        return RestoreInfo(database, max(applied), pending, aside)
    finally:
        held.release()
