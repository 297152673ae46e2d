"""Storage for the clinician web app: accounts, enrolment links, sessions, the append-only audit log.

An account's ``password_hash`` is '' until its holder sets one through an enrolment link.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.clock import iso
from bot.storage.base import SqliteRepository


class WebRepository(SqliteRepository):
    # -- accounts ------------------------------------------------------------------------
    async def add_account(
        self,
        practice_id: int,
        username: str,
        display_name: str,
        password_hash: str,
        role: str,
        clinician_id: int | None,
        now: datetime,
    ) -> int:
        return await self.db.execute(
            "INSERT INTO web_accounts (practice_id, username, display_name, password_hash, role, "
            "clinician_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (practice_id, username, display_name, password_hash, role, clinician_id, iso(now)),
        )

    async def account_by_username(self, username: str) -> Any:
        return await self.db.fetchone("SELECT * FROM web_accounts WHERE username = ?", (username,))

    async def account(self, account_id: int) -> Any:
        return await self.db.fetchone("SELECT * FROM web_accounts WHERE id = ?", (account_id,))

    async def accounts(self, practice_id: int) -> list[Any]:
        return await self.db.fetchall(
            "SELECT * FROM web_accounts WHERE practice_id = ? ORDER BY id", (practice_id,)
        )

    async def login_failed(self, account_id: int) -> int:
        """One more wrong password or code in a row; returns how many now."""
        async with self.db.transaction():
            await self.db.execute(
                "UPDATE web_accounts SET failed_logins = failed_logins + 1 WHERE id = ?", (account_id,)
            )
            row = await self.db.fetchone("SELECT failed_logins FROM web_accounts WHERE id = ?", (account_id,))
        return int(row["failed_logins"]) if row else 0

    async def lock_account(self, account_id: int, until: datetime) -> None:
        await self.db.execute(
            "UPDATE web_accounts SET locked_until = ? WHERE id = ?", (iso(until), account_id)
        )

    async def login_ok(self, account_id: int) -> None:
        await self.db.execute(
            "UPDATE web_accounts SET failed_logins = 0, locked_until = NULL WHERE id = ?", (account_id,)
        )

    async def set_password(self, account_id: int, password_hash: str) -> None:
        await self.db.execute(
            "UPDATE web_accounts SET password_hash = ? WHERE id = ?", (password_hash, account_id)
        )

    async def reset_account(self, account_id: int, now: datetime) -> None:
        """No password, no app, no sessions, no working link: the holder starts again."""
        async with self.db.transaction():
            await self.db.execute(
                "UPDATE web_accounts SET password_hash = '', totp_secret = NULL, totp_confirmed = 0, "
                "failed_logins = 0, locked_until = NULL WHERE id = ?",
                (account_id,),
            )
            await self.db.execute("DELETE FROM web_sessions WHERE account_id = ?", (account_id,))
            await self.db.execute(
                "UPDATE web_enrolments SET used_at = ? WHERE account_id = ? AND used_at IS NULL",
                (iso(now), account_id),
            )

    # -- enrolment links -----------------------------------------------------------------
    async def add_enrolment(self, token_hash: str, account_id: int, now: datetime, expires: datetime) -> None:
        """A new link for the account; any older link of it stops working."""
        async with self.db.transaction():
            await self.db.execute(
                "UPDATE web_enrolments SET used_at = ? WHERE account_id = ? AND used_at IS NULL",
                (iso(now), account_id),
            )
            await self.db.execute(
                "INSERT INTO web_enrolments (token_hash, account_id, created_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (token_hash, account_id, iso(now), iso(expires)),
            )

    async def enrolment(self, token_hash: str) -> Any:
        return await self.db.fetchone("SELECT * FROM web_enrolments WHERE token_hash = ?", (token_hash,))

    async def complete_enrolment(
        self, token_hash: str, account_id: int, password_hash: str, now: datetime
    ) -> bool:
        """Use the link (once) and set the password and the linked app; False when it was used."""
        async with self.db.transaction():
            used = await self.db.execute_rowcount(
                "UPDATE web_enrolments SET used_at = ? WHERE token_hash = ? AND account_id = ? "
                "AND used_at IS NULL",
                (iso(now), token_hash, account_id),
            )
            if used != 1:
                return False
            await self.db.execute(
                "UPDATE web_accounts SET password_hash = ?, totp_confirmed = 1, failed_logins = 0, "
                "locked_until = NULL WHERE id = ?",
                (password_hash, account_id),
            )
        return True

    async def set_totp(self, account_id: int, secret: str | None, confirmed: bool) -> None:
        await self.db.execute(
            "UPDATE web_accounts SET totp_secret = ?, totp_confirmed = ? WHERE id = ?",
            (secret, int(confirmed), account_id),
        )

    async def use_totp_step(self, account_id: int, step: int) -> bool:
        """Accept each TOTP code once: False when this step (or a later one) was used already."""
        count = await self.db.execute_rowcount(
            "UPDATE web_accounts SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?",
            (step, account_id, step),
        )
        return count == 1

    # -- sessions ------------------------------------------------------------------------
    async def add_session(
        self, token_hash: str, account_id: int, csrf: str, now: datetime, expires: datetime
    ) -> None:
        await self.db.execute(
            "INSERT INTO web_sessions (token_hash, account_id, csrf_token, created_at, last_seen, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (token_hash, account_id, csrf, iso(now), iso(now), iso(expires)),
        )

    async def session(self, token_hash: str) -> Any:
        return await self.db.fetchone("SELECT * FROM web_sessions WHERE token_hash = ?", (token_hash,))

    async def touch_session(self, token_hash: str, now: datetime, expires: datetime) -> None:
        await self.db.execute(
            "UPDATE web_sessions SET last_seen = ?, expires_at = ? WHERE token_hash = ?",
            (iso(now), iso(expires), token_hash),
        )

    async def renew_session(self, token_hash: str, new_hash: str, csrf: str) -> None:
        """The same session (its start, its steps) under a new token and CSRF token."""
        await self.db.execute(
            "UPDATE web_sessions SET token_hash = ?, csrf_token = ? WHERE token_hash = ?",
            (new_hash, csrf, token_hash),
        )

    async def end_sessions(self, account_id: int, keep: str | None = None) -> None:
        """End every session of the account (but ``keep``)."""
        await self.db.execute(
            "DELETE FROM web_sessions WHERE account_id = ? AND token_hash IS NOT ?", (account_id, keep)
        )

    async def session_second_factor(self, token_hash: str) -> None:
        await self.db.execute("UPDATE web_sessions SET second_factor = 1 WHERE token_hash = ?", (token_hash,))

    async def end_session(self, token_hash: str) -> None:
        await self.db.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))

    # -- audit ---------------------------------------------------------------------------
    async def audit(
        self,
        now: datetime,
        event: str,
        user_name: str,
        *,
        account_id: int | None = None,
        practice_id: int | None = None,
        patient_id: int | None = None,
        consult_id: int | None = None,
        on_behalf_of: str | None = None,
        detail: str | None = None,
        client_address: str | None = None,
    ) -> None:
        await self.db.execute(
            "INSERT INTO audit_log (at, event, account_id, user_name, on_behalf_of, practice_id, "
            "patient_id, consult_id, detail, client_address) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                iso(now),
                event,
                account_id,
                user_name,
                on_behalf_of,
                practice_id,
                patient_id,
                consult_id,
                detail,
                client_address,
            ),
        )

    async def audit_rows(self, practice_id: int, limit: int = 500) -> list[Any]:
        return await self.db.fetchall(
            "SELECT * FROM audit_log WHERE practice_id = ? ORDER BY id DESC LIMIT ?", (practice_id, limit)
        )
