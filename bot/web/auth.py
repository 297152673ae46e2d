"""Log-in for clinicians: argon2 passwords, a TOTP second factor, server-side sessions, lockout.

Every session starts half-open (password only) and becomes a real session after a valid TOTP code;
a code is accepted once. Every ``MAX_FAILED`` wrong passwords or codes in a row lock the account,
first for ``LOCK_FIRST``, then twice as long each time (at most ``LOCK_MAX``); a complete log-in
(password and code) starts the count again. Unknown, locked and wrong cost the same argon2 check
and get the same answer. Sessions end after ``IDLE`` without activity or ``MAX_AGE`` in total; the
session token changes after each step (password, code) and after a password change.

Nobody but the account holder ever sees a password: an account (or an admin's reset of one) gets a
one-time enrolment link (``ENROL_FOR``, once, only its sha256 stored) where its holder sets their own
password and links an authenticator app. A log-in never links an app: an account without one
cannot log in.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
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
LOCK_FIRST = timedelta(minutes=1)
LOCK_MAX = timedelta(hours=1)
IDLE = timedelta(minutes=30)
MAX_AGE = timedelta(hours=10)
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
ENROL_FOR = timedelta(hours=72)
ISSUER = "Voorgesprek"
USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


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


@dataclass(frozen=True)
class Attempt:
    """The outcome of a password or a code: ``ok``, ``wrong`` or ``locked``. ``account`` is the real
    account that was tried (None: no such username); ``locked_for`` is set when this failure
    started a lock."""

    outcome: str  # also "not_ready": the right password, but no app linked (the holder must enrol)
    account: Account | None
    locked_for: timedelta | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def lock_for(failures: int) -> timedelta | None:
    """How long the account locks after this many failures in a row (None: it does not)."""
    if failures <= 0 or failures % MAX_FAILED:
        return None
    rounds = failures // MAX_FAILED
    return min(LOCK_MAX, LOCK_FIRST * 2 ** min(rounds - 1, 20))


@dataclass(frozen=True)
class Enrolment:
    """A valid enrolment link: the account, and the authenticator key it shows until used."""

    account: Account
    secret: str
    expires_at: datetime


def password_problem(password: str, repeat: str, username: str) -> str | None:
    """None, or why a new password will not do: ``too_short``, ``too_long``, ``mismatch``, ``username``."""
    if password != repeat:
        return "mismatch"
    if len(password) < MIN_PASSWORD:
        return "too_short"
    if len(password) > MAX_PASSWORD:
        return "too_long"
    if password.strip().casefold() == username.casefold():
        return "username"
    return None


def _locked(row: Any, now: datetime) -> bool:
    return bool(row["locked_until"]) and from_iso(row["locked_until"]) > now


_dummy_hash: str | None = None  # an argon2 hash of nothing anyone knows: unknown users cost a verify


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
        global _dummy_hash
        if _dummy_hash is None:
            _dummy_hash = self.hasher.hash(secrets.token_urlsafe(32))
        self.dummy = _dummy_hash
        # One attempt at a time per account: a burst in parallel cannot slip past the lock.
        self._locks: dict[int, asyncio.Lock] = {}

    async def create_account(
        self,
        practice_id: int,
        username: str,
        display_name: str,
        *,
        role: str = "poh",
        clinician_id: int | None = None,
    ) -> tuple[int, str]:
        """A new account without a password; returns (account id, enrolment token for its link)."""
        if not USERNAME.fullmatch(username):
            raise AuthError("a username is 1-64 of A-Z a-z 0-9 . _ @ -")
        if not display_name.strip() or len(display_name) > 200:
            raise AuthError("a name is 1-200 characters")
        if await self.repo.account_by_username(username) is not None:
            raise AuthError(f"username {username!r} is taken")
        account = await self.repo.add_account(
            practice_id, username, display_name.strip(), "", role, clinician_id, self.clock.now()
        )
        return account, await self._new_link(account)

    async def _new_link(self, account_id: int) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        await self.repo.add_enrolment(token_hash(token), account_id, now, now + ENROL_FOR)
        return token

    async def reset_account(self, account_id: int) -> str:
        """Void the password, the linked app, every session and every older link; returns the
        token of a new enrolment link."""
        async with self._serial(account_id):
            await self.repo.reset_account(account_id, self.clock.now())
            return await self._new_link(account_id)

    async def enrolment(self, token: str) -> Enrolment | None:
        """The link's account and the key to link, or None (unknown, used, expired, inactive)."""
        row = await self.repo.enrolment(token_hash(token)) if token else None
        if row is None or row["used_at"] or from_iso(row["expires_at"]) <= self.clock.now():
            return None
        account_row = await self.repo.account(row["account_id"])
        if account_row is None or not account_row["active"]:
            return None
        if account_row["totp_confirmed"]:
            return None  # a link never replaces an app already linked (a reset unlinks it first)
        secret = account_row["totp_secret"]
        if not secret:
            secret = pyotp.random_base32()
            await self.repo.set_totp(account_row["id"], secret, False)
        return Enrolment(_account(account_row), secret, from_iso(row["expires_at"]))

    async def enrol(self, token: str, password: str, repeat: str, code: str) -> str:
        """Set the holder's password and link their app: ``ok``, ``expired`` (the link does not
        work), ``bad_code``, or a ``password_problem``."""
        enrolment = await self.enrolment(token)
        if enrolment is None:
            return "expired"
        problem = password_problem(password, repeat, enrolment.account.username)
        if problem is not None:
            return problem
        account = enrolment.account
        async with self._serial(account.id):
            now = self.clock.now()
            step = code_step(enrolment.secret, code, now)
            if step is None or not await self.repo.use_totp_step(account.id, step):
                return "bad_code"
            password_hash = await asyncio.to_thread(self.hasher.hash, password)
            if not await self.repo.complete_enrolment(token_hash(token), account.id, password_hash, now):
                return "expired"  # used in the meantime
        return "ok"

    async def change_password(
        self, session: Session, current: str, code: str, password: str, repeat: str
    ) -> Attempt:
        """A new password needs the current one and a code (a wrong one counts towards the lock);
        ``ok`` ends every other session of the account. Outcomes: ``ok``, ``wrong``, ``locked``,
        or a ``password_problem``."""
        account = session.account
        problem = password_problem(password, repeat, account.username)
        if problem is not None:
            return Attempt(problem, account)
        async with self._serial(account.id):
            row = await self.repo.account(account.id)
            good = await self._verify(row["password_hash"], current)
            now = self.clock.now()
            if _locked(row, now):
                return Attempt("locked", account)
            step = code_step(row["totp_secret"], code, now) if good and row["totp_secret"] else None
            if step is None or not await self.repo.use_totp_step(account.id, step):
                return await self._failed(account, now)
            await self.repo.set_password(account.id, await asyncio.to_thread(self.hasher.hash, password))
            await self.repo.login_ok(account.id)
            await self.repo.end_sessions(account.id, keep=session.token_hash)
        return Attempt("ok", account)

    def _serial(self, account_id: int) -> asyncio.Lock:
        return self._locks.setdefault(account_id, asyncio.Lock())

    async def _verify(self, password_hash: str, password: str) -> bool:
        """One argon2 check, off the event loop (it takes tens of milliseconds on purpose)."""

        def check() -> bool:
            try:
                return bool(self.hasher.verify(password_hash or self.dummy, password)) and bool(password_hash)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    async def check_password(self, username: str, password: str) -> Attempt:
        """The password step. Unknown, inactive and locked accounts cost the same argon2 check as a
        wrong password, and the caller shows them the same answer."""
        row = await self.repo.account_by_username(username.strip())
        if row is None or not row["active"]:
            await self._verify(self.dummy, password)
            return Attempt("wrong", None)
        async with self._serial(row["id"]):
            row = await self.repo.account(row["id"])  # fresh: another attempt may just have locked it
            good = await self._verify(row["password_hash"], password)
            now = self.clock.now()
            account = _account(row)
            if _locked(row, now):
                return Attempt("locked", account)
            if not good:
                return await self._failed(account, now)
            if not account.totp_confirmed:
                return Attempt("not_ready", account)  # made before enrolment links: needs a reset
            return Attempt("ok", account)

    async def _failed(self, account: Account, now: datetime) -> Attempt:
        failures = await self.repo.login_failed(account.id)
        locked = lock_for(failures)
        if locked is not None:
            await self.repo.lock_account(account.id, now + locked)
        return Attempt("wrong", account, locked)

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

    async def end_all_sessions(self, account_id: int) -> None:
        """Log out everywhere."""
        await self.repo.end_sessions(account_id)

    async def renew(self, session: Session) -> tuple[str, Session]:
        """The same session under a new token and CSRF token (after a step of the log-in or a new
        password: a token seen before that moment no longer works); returns (cookie token, session)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        await self.repo.renew_session(session.token_hash, token_hash(token), csrf)
        return token, Session(token_hash(token), session.account, csrf, session.second_factor)

    def provisioning_uri(self, account: Account, secret: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=account.username, issuer_name=ISSUER)

    async def verify_totp(self, session: Session, code: str) -> Attempt:
        """The second step; a right code is accepted once and ends the count of failures."""
        async with self._serial(session.account.id):
            row = await self.repo.account(session.account.id)
            if row is None or not row["totp_secret"] or not row["totp_confirmed"]:
                return Attempt("wrong", None)
            now = self.clock.now()
            account = _account(row)
            if _locked(row, now):
                return Attempt("locked", account)
            step = code_step(row["totp_secret"], code, now)
            if step is None or not await self.repo.use_totp_step(row["id"], step):
                return await self._failed(account, now)  # wrong, or used already
            await self.repo.login_ok(row["id"])
            await self.repo.session_second_factor(session.token_hash)
            return Attempt("ok", account)


def code_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code ``code`` is: now or one step either way (clock drift); else None."""
    totp = pyotp.TOTP(secret)
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == totp.digits):
        return None
    for offset in (0, -1, 1):
        step = int(now.timestamp()) // totp.interval + offset
        if secrets.compare_digest(totp.at(step * totp.interval), code):
            return step
    return None
