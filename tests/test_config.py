"""Settings: every bad value stops start-up with one line naming the variable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from bot.cli import app
from bot.config import LOG_LEVELS, Settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize("given", ["debug", "Warning", " error ", "CRITICAL"])
def test_log_level_is_case_insensitive(given: str) -> None:
    """Any case is accepted and kept as the standard upper-case name."""
    assert settings(LOG_LEVEL=given).log_level == given.strip().upper()


def test_a_bad_log_level_names_the_allowed_values() -> None:
    """LOG_LEVEL=verbose: the error says which variable and what it may be."""
    with pytest.raises(ValidationError) as caught:
        settings(LOG_LEVEL="verbose")
    (error,) = caught.value.errors()
    assert error["loc"] == ("LOG_LEVEL",)
    assert all(level in error["msg"] for level in LOG_LEVELS) and "'verbose'" in error["msg"]


def test_blank_values_copied_from_env_example_mean_unset() -> None:
    """`SLACK_SIGNING_SECRET=` and `SIGNOFF_POLICY=` as in .env.example: not set, no error."""
    s = settings(SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET=SecretStr(" "), SLACK_APP_TOKEN="",
                 SIGNOFF_CHANNEL="", SIGNOFF_POLICY="")
    assert (s.slack_bot_token, s.slack_signing_secret, s.slack_app_token) == (None, None, None)
    assert (s.signoff_channel, s.signoff_policy) == (None, None)
    assert s.missing_for_serve() == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]


def test_socket_mode_needs_no_signing_secret() -> None:
    """With SLACK_APP_TOKEN, the bot token is all `serve` also needs."""
    s = settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1")
    assert s.missing_for_serve() == []


@pytest.mark.parametrize(("name", "value", "says"), [
    ("LOG_LEVEL", "verbose", "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("PORT", "abc", "valid integer"),
    ("PORT", "70000", "less than or equal to 65535"),
    ("SIGNOFF_CHANNEL", "#approvals", "must be a channel ID"),
    ("SIGNOFF_POLICY", "no-such-policy.toml", "which is not a file"),
    ("SLACK_API_URL", "slack.com/api", "must be an http(s) URL"),
    ("SLACK_BOT_TOKEN", "xapp-1-swapped", "must be a bot token, starting with xoxb-"),
    ("SLACK_APP_TOKEN", "xoxb-swapped", "must be an app-level token, starting with xapp-"),
    ("SIGNOFF_DB_POOL_SIZE", "0", "greater than or equal to 1"),
    ("SIGNOFF_MAX_RESUMES", "0", "greater than or equal to 1"),
    ("SIGNOFF_MAX_RESUMES", "many", "valid integer"),
])
def test_serve_refuses_a_bad_setting_with_one_line(
    name: str, value: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`signoff serve` exits 2 and prints `signoff: setting NAME: what is wrong`, nothing more."""
    monkeypatch.chdir(tmp_path)  # no .env here
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "secret", name: value}
    result = CliRunner().invoke(app, ["serve"], env=env)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"signoff: setting {name}: ") and says in lines[0]
    assert "Value error" not in lines[0] and "Traceback" not in result.output


def test_a_secret_is_never_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token of the wrong kind is named, and its value is not printed."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["serve"], env={"SLACK_BOT_TOKEN": "xoxp-my-user-token",
                                                     "SLACK_SIGNING_SECRET": "secret"})
    assert result.exit_code == 2
    assert "SLACK_BOT_TOKEN" in result.stderr and "my-user-token" not in result.stderr


@pytest.mark.parametrize(("database", "says"), [
    ("postgresql://signoff:hunter2-secret@127.0.0.1:1/signoff", "cannot connect to"),
    ("postgresql://signoff:hunter2-secret@127.0.0.1:notaport/signoff", "cannot read"),
    ("no-such-folder/signoff.db", "does not exist"),
])
def test_serve_refuses_a_database_it_cannot_open_without_echoing_the_password(
    database: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unreachable, unreadable or nowhere: one line naming SIGNOFF_DATABASE, exit 2, and the
    URL's password shown as ***."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["serve"], env={
        "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "secret",
        "SIGNOFF_DATABASE": database})
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("signoff: SIGNOFF_DATABASE: ") and says in lines[0]
    assert "hunter2-secret" not in result.output
