"""Log-in for clinicians: argon2 passwords, a TOTP second factor, server-side sessions, lockout.

Every session starts half-open (password only) and becomes a real session after a valid TOTP code;
a code is accepted once. After ``MAX_FAILED`` wrong passwords or codes the account is locked for
``LOCK_FOR``. Sessions end after ``IDLE`` without activity or ``MAX_AGE`` in total.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.clock import Clock, from_iso
from bot.storage.ports import WebStore

MAX_FAILED = 5
LOCK_FOR = timedelta(minutes=15)
IDLE = timedelta(minutes=30)
MAX_AGE = timedelta(hours=10)
MIN_PASSWORD = 12
ISSUER = "Voorgesprek"


class AuthError(ValueError):
    pass


@dataclass(frozen=True)
class Account:
    id: int
    practice_id: int
    clinician_id: int | None
    username: str
    display_name: str
    role: str
    totp_secret: str | None
    totp_confirmed: bool

    @property
    def admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Session:
    token_hash: str
    account: Account
    csrf: str
    second_factor: bool


def _account(row: Any) -> Account:
    return Account(
        row["id"],
        row["practice_id"],
        row["clinician_id"],
        row["username"],
        row["display_name"],
        row["role"],
        row["totp_secret"],
        bool(row["totp_confirmed"]),
    )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WebAuth:
    def __init__(self, repo: WebStore, clock: Clock) -> None:
        self.repo = repo
        self.clock = clock
        self.hasher = PasswordHasher()

    async def create_account(
        self,
        practice_id: int,
        username: str,
        display_name: str,
        password: str,
        *,
        role: str = "poh",
        clinician_id: int | None = None,
    ) -> int:
        if len(password) < MIN_PASSWORD:
            raise AuthError(f"a password needs at least {MIN_PASSWORD} characters")
        if await self.repo.account_by_username(username) is not None:
            raise AuthError(f"username {username!r} is taken")
        return await self.repo.add_account(
            practice_id,
            username,
            display_name,
            self.hasher.hash(password),
            role,
            clinician_id,
            self.clock.now(),
        )

    async def check_password(self, username: str, password: str) -> tuple[Account | None, str]:
        """(account, "ok") or (None, "wrong" | "locked"); unknown users look like wrong passwords."""
        row = await self.repo.account_by_username(username.strip())
        now = self.clock.now()
        if row is None or not row["active"]:
            self.hasher.hash(password)  # the same work as for a real account: no timing hint
            return None, "wrong"
        if row["locked_until"] and from_iso(row["locked_until"]) > now:
            return None, "locked"
        try:
            self.hasher.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            return None, await self._failed(row, now)
        return _account(row), "ok"

    async def _failed(self, row: Any, now: datetime) -> str:
        locked = row["failed_logins"] + 1 >= MAX_FAILED
        await self.repo.login_failed(row["id"], now + LOCK_FOR if locked else None)
        return "locked" if locked else "wrong"

    async def start_session(self, account: Account) -> tuple[str, str]:
        """A new half-open session; returns (cookie token, CSRF token)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock.now()
        await self.repo.add_session(token_hash(token), account.id, csrf, now, now + IDLE)
        return token, csrf

    async def session(self, token: str | None) -> Session | None:
        if not token:
            return None
        row = await self.repo.session(token_hash(token))
        if row is None:
            return None
        now = self.clock.now()
        account_row = await self.repo.account(row["account_id"])
        expired = from_iso(row["expires_at"]) <= now or from_iso(row["created_at"]) + MAX_AGE <= now
        if expired or account_row is None or not account_row["active"]:
            await self.repo.end_session(row["token_hash"])
            return None
        await self.repo.touch_session(row["token_hash"], now, now + IDLE)
        return Session(
            row["token_hash"], _account(account_row), row["csrf_token"], bool(row["second_factor"])
        )

    async def end_session(self, session: Session) -> None:
        await self.repo.end_session(session.token_hash)

    async def totp_secret(self, account: Account) -> str:
        """The secret to enrol (a new one until the first code confirms it)."""
        if account.totp_secret and account.totp_confirmed:
            return account.totp_secret
        secret = account.totp_secret or pyotp.random_base32()
        await self.repo.set_totp(account.id, secret, False)
        return secret

    def provisioning_uri(self, account: Account, secret: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=account.username, issuer_name=ISSUER)

    async def verify_totp(self, session: Session, code: str) -> bool:
        row = await self.repo.account(session.account.id)
        if row is None or not row["totp_secret"]:
            return False
        if row["locked_until"] and from_iso(row["locked_until"]) > self.clock.now():
            return False
        totp = pyotp.TOTP(row["totp_secret"])
        now = self.clock.now()
        code = code.strip().replace(" ", "")
        for offset in (0, -1, 1):  # one step of clock drift either way
            step = int(now.timestamp()) // totp.interval + offset
            if (
                code.isascii()
                and code.isdigit()
                and secrets.compare_digest(totp.at(step * totp.interval), code)
            ):
                if not await self.repo.use_totp_step(row["id"], step):
                    return False  # this code was used already
                await self.repo.set_totp(row["id"], row["totp_secret"], True)
                await self.repo.login_ok(row["id"])
                await self.repo.session_second_factor(session.token_hash)
                return True
        await self._failed(row, now)
        return False
