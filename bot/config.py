"""Settings, read once from the environment and ``.env`` (see ``.env.example``)."""

from __future__ import annotations

import re
from datetime import datetime, time
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.content import DEFAULT_CONTENT_DIR
from scheduler.schedules import QuietHours


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = Field(default=None, description="Token from @BotFather.")
    bot_username: str | None = Field(
        default=None, description="The bot's @username, for invite links (asked from Telegram if empty)."
    )
    telegram_api_url: str | None = Field(
        default=None, description="Base URL of a local Bot API server; empty means Telegram's own."
    )
    database_path: Path = Field(default=Path("./data/voorgesprek.sqlite3"))
    timezone: str = Field(default="Europe/Amsterdam")
    invite_ttl_hours: int = Field(default=14 * 24, ge=1)
    low_score_threshold: int = Field(default=5, ge=0, le=10)
    max_answer_chars: int = Field(default=2000, ge=50, le=4000)
    outbox_interval_seconds: float = Field(default=15.0, gt=0)
    send_rate_per_second: float = Field(default=30.0, gt=0)
    send_rate_per_chat_per_second: float = Field(default=1.0, gt=0)
    update_concurrency: int = Field(
        default=64, ge=1, le=1000, description="Chats handled at the same time (each chat stays in order)."
    )
    quiet_hours: str = Field(
        default="21:30-08:00", description="No reminders in this local period (HH:MM-HH:MM)."
    )
    reminder_max_late_hours: float = Field(
        default=2.0, ge=0, description="After downtime: send a reminder at most this late, else missed."
    )
    plan_invite_after_minutes: int = Field(
        default=60,
        ge=0,
        description="Ask the patient to make their plan this long after the consult; 0 = off.",
    )
    safety_check_minutes: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Risk words get one direct yes/no question; unanswered this long: the POH is told.",
    )
    signal_rules_file: Path | None = Field(default=None, description="Practice signalling rules (YAML).")
    simulated_clock_start: datetime | None = Field(
        default=None, description="Demos and tests only: the bot's clock starts at this moment..."
    )
    simulated_clock_speed: float = Field(default=1.0, gt=0, description="...and runs this many times faster.")
    tts_backend: str = Field(default="espeak", description="Read aloud with: espeak, piper or off.")
    piper_model: Path | None = Field(default=None, description="A local Piper voice model (.onnx).")
    voice_cache_dir: Path = Field(default=Path("./data/voice-cache"))
    stt_model_dir: Path | None = Field(default=None, description="faster-whisper model folder; empty: off.")
    max_voice_seconds: int = Field(default=180, ge=5, le=1200)
    pdf_font: Path = Field(
        default=Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        description="TrueType font of the agenda PDF (Debian: fonts-dejavu-core); any Unicode font.",
    )
    web_host: str = Field(default="127.0.0.1", description="Where `python -m bot web` listens.")
    web_port: int = Field(default=8080, ge=1, le=65535)
    web_base_url: str | None = Field(
        default=None, description="Public https URL of the web app; set it to get Secure cookies and links."
    )
    trusted_proxies: str = Field(
        default="",
        description="Reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For is believed.",
    )
    webhook_url: str | None = Field(
        default=None, description="`run --webhook`: the public https URL Telegram posts updates to."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="`run --webhook`: secret Telegram sends in every request (1-256 of A-Z a-z 0-9 _ -).",
    )
    webhook_host: str = Field(default="127.0.0.1", description="`run --webhook`: where the bot listens.")
    webhook_port: int = Field(default=8081, ge=1, le=65535)
    webhook_path: str = Field(default="/telegram/webhook")
    sociale_kaart_file: Path | None = Field(
        default=None, description="The practice's sociale kaart (YAML); empty: content/nl/sociale_kaart.yaml."
    )
    health_max_tick_age_seconds: float = Field(
        default=300.0, gt=0, description="`health`: unhealthy when the scheduler's last tick is older."
    )
    health_max_outbox_age_seconds: float = Field(
        default=900.0, gt=0, description="`health`: unhealthy when a due outbox message waits longer."
    )
    health_timeout_seconds: float = Field(
        default=3.0, gt=0, le=30, description="`health`: time for the test write and for Telegram's getMe."
    )
    retention_months: int = Field(
        default=0,
        ge=0,
        le=600,
        description="Erase a patient's data this many months after their last activity; 0 = off.",
    )
    content_dir: Path = Field(default=DEFAULT_CONTENT_DIR)
    log_level: str = Field(default="INFO")

    @field_validator("webhook_secret")
    @classmethod
    def _valid_secret(cls, value: SecretStr | None) -> SecretStr | None:
        """Telegram accepts 1-256 characters A-Z, a-z, 0-9, _ and -; empty means not set."""
        if value is None or not value.get_secret_value():
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("WEBHOOK_SECRET: 1 to 256 of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        _networks(value)
        return value

    @property
    def trusted_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return _networks(self.trusted_proxies)

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("tts_backend")
    @classmethod
    def _valid_tts(cls, value: str) -> str:
        if value not in ("espeak", "piper", "off"):
            raise ValueError("TTS_BACKEND must be espeak, piper or off")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _valid_quiet(cls, value: str) -> str:
        start, _, end = value.partition("-")
        time.fromisoformat(start.strip())
        time.fromisoformat(end.strip())
        return value

    @field_validator(
        "bot_token",
        "bot_username",
        "telegram_api_url",
        "signal_rules_file",
        "simulated_clock_start",
        "piper_model",
        "web_base_url",
        "sociale_kaart_file",
        "stt_model_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("retention_months", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return 0 if value == "" else value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def quiet(self) -> QuietHours:
        start, _, end = self.quiet_hours.partition("-")
        return QuietHours(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))


def _networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """``"10.0.0.0/8, 192.0.2.1"`` -> the networks (a single address is a /32 or /128)."""
    try:
        return tuple(ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"TRUSTED_PROXIES: {exc}") from None
