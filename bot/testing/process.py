"""A bot process for end-to-end tests and the load benchmark: start, SIGKILL, SIGTERM, reap."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path


class BotProcess:
    def __init__(
        self, env: dict[str, str], cwd: Path, log: Path, module: tuple[str, ...] = ("bot", "run")
    ) -> None:
        self.env, self.cwd, self.log, self.module = env, cwd, log, module
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as fh:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                *self.module,
                env=self.env,
                cwd=self.cwd,
                stdout=fh,
                stderr=fh,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def wait(self, timeout: float = 15) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self) -> None:
        """SIGTERM: the bot finishes what it is doing and exits cleanly."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = await self.wait()
        assert code == 0, f"the bot exited with {code} after SIGTERM; its log ends:\n{self.log_tail()}"

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def reap(self) -> None:
        """After a failed test: never leave a bot process behind."""
        if self.proc and self.proc.returncode is None:
            self.kill()
            await self.wait()
