"""Typed settings read from the environment and `.env`, built once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LOG_LEVELS", "Settings"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Every knob the bot reads; names match DESIGN.md's contracts."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    signoff_channel: str | None = Field(default=None, alias="SIGNOFF_CHANNEL")
    signoff_database: str = Field(default="signoff.db", alias="SIGNOFF_DATABASE")
    signoff_db_pool_size: int = Field(
        default=10, alias="SIGNOFF_DB_POOL_SIZE", ge=1,
        description="PostgreSQL connections this process opens at most (one pool shared by "
                    "the approval store and LangGraph's checkpointer); unused with SQLite")
    signoff_policy: Path | None = Field(default=None, alias="SIGNOFF_POLICY")
    signoff_graphs: str = Field(default="", alias="SIGNOFF_GRAPHS")
    host: str = Field(default="0.0.0.0", alias="HOST")
    port: int = Field(default=3000, alias="PORT", ge=0, le=65535)
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    # Seconds a worker's claim on a run lasts unless renewed (it is renewed every third).
    signoff_lease: float = Field(default=30.0, alias="SIGNOFF_LEASE", gt=0, le=3600)
    # Seconds SIGTERM waits for work in flight before giving up the claims still held.
    signoff_shutdown_grace: float = Field(default=20.0, alias="SIGNOFF_SHUTDOWN_GRACE",
                                          ge=0, le=600)
    # Runs this process drives through their graph at once (new runs, clicks, deadlines,
    # the outbox and recovery all wait for a slot; Slack calls are made outside it).
    signoff_max_resumes: int = Field(default=8, alias="SIGNOFF_MAX_RESUMES", ge=1, le=256)

    # Messages leave out the variable's name: pydantic's error and `signoff` put it in front.

    @field_validator("slack_bot_token", "slack_signing_secret", "slack_app_token",
                     "signoff_channel", "signoff_policy", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `.env.example` copied as is leaves these as `NAME=`: that means "not set".
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(text, str) and not text.strip() else value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_kind(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token, starting with xoxb- "
                             "(the app's OAuth & Permissions page)")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_kind(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token, starting with xapp- "
                             "(the app's Basic Information page)")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_ends_with_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value if value.endswith("/") else value + "/"

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (any case), "
                             f"got {value!r}")
        return level

    @field_validator("signoff_channel")
    @classmethod
    def _channel_is_an_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not (value[:1].isalpha() and value.isascii() and value.isalnum()):
            raise ValueError(f"must be a channel ID such as C0123ABCD, not a name ({value!r})")
        return value

    @field_validator("signoff_policy")
    @classmethod
    def _policy_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"names {str(value)!r}, which is not a file")
        return value

    @property
    def has_slack_credentials(self) -> bool:
        """True when both the bot token and the signing secret are set."""
        return self.slack_bot_token is not None and self.slack_signing_secret is not None

    def missing_for_serve(self) -> list[str]:
        """Names of the variables `signoff serve` cannot start without."""
        missing = []
        if self.slack_bot_token is None:
            missing.append("SLACK_BOT_TOKEN")
        if self.slack_signing_secret is None and self.slack_app_token is None:
            missing.append("SLACK_SIGNING_SECRET")
        return missing
